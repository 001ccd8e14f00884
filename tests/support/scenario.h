// The reference scenario for fault tests: a desktop database of the demo's
// reference schema (orphans, duplicates, non-ASCII text) on the source server;
// a template target database holding the cloud schema, mobile-created rows and
// an earlier sync; then desktop changes, so the run under test inserts,
// updates and deletes. Knows the exact before- and after-state of every target
// table (checksums read in one snapshot).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/sync_fixture.h"

namespace stagesync::testing {

using TableState = std::map<std::string, std::string>;  // table -> checksum

// Checksum of every public table over the columns that do not legitimately
// differ between equivalent runs (identity values, now() defaults).
TableState snapshot(pg::Connection& db);

class Scenario : public SyncFixture {
 protected:
  // Builds the scenario at `scale`; `extra_yaml` is appended to the demo configuration
  // (e.g. a retry policy). Call from SetUp().
  // With `mode` "incremental" the run under test (and every trial) is an
  // incremental one, over a template whose earlier full run left a watermark.
  void build(double scale, const std::string& extra_yaml = "", const std::string& mode = "full");
  // The sync command line of the run under test.
  std::vector<std::string> sync_args(const std::string& cfg) const {
    return {"sync", "--config", cfg, "--mode", mode_};
  }

  std::string config_for(const std::string& target_url);
  // Drops `name` if it exists and recreates it as a copy of the template.
  void recreate_from_template(const std::string& name);
  // Waits until no stagesync session remains on database `db` of the target server.
  void wait_for_backends_gone(const std::string& db);
  // Every table at the before- or after-state, all agreeing; returns "before" or "after".
  std::string judge(pg::Connection& db, const std::string& what);
  // Staging leftovers and runs still marked running.
  void expect_clean(pg::Connection& db, const std::string& what);

  std::unique_ptr<TempDatabase> tpl_;
  TableState before_, after_;
  double duration_ = 0;  // seconds an undisturbed run of the binary takes
  std::string extra_yaml_;
  std::string mode_ = "full";
};

}  // namespace stagesync::testing
