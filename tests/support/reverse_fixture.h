// A desktop and a cloud database with a reverse-synced work diary (the
// reference conversion: cloud `timefrom time`, desktop `timestamp` built from
// the row's date) and a reminder table synced both ways (forward: desktop
// rows, owner D; reverse: mobile rows, owner M). Helpers observe the desktop
// directly (row versions, content), never through the tool's own counts.
#pragma once

#include <string>
#include <vector>

#include "report/run_summary.h"
#include "reverse/reverse_run.h"
#include "support/sync_fixture.h"

namespace stagesync::testing {

class ReverseFixture : public SyncFixture {
 protected:
  ReverseFixture();

  // The configuration; `reverse_extra` is added to the workdiary entry (indented YAML lines).
  std::string reverse_config(const std::string& reverse_extra = "", const std::string& target_url = "",
                             const std::string& source_url = "");
  // In-process reverse run (exceptions propagate).
  report::RunSummary reverse(const std::string& cfg, bool plan_only = false);

  // Physical identity of every desktop row version of `table` (changes on any write).
  std::string desktop_versions(const std::string& table);
  // The mobile rows as the desktop should hold them (cloud side, mapped) and as it does, sorted.
  std::vector<std::string> mobile_diary_on_target();
  std::vector<std::string> mobile_diary_on_desktop();
  int64_t desktop_count(const std::string& sql);
  // Adds `n` mobile work diary rows on the target.
  void add_mobile_rows(int n, const std::string& note = "note");

  std::string cfg_;
};

}  // namespace stagesync::testing
