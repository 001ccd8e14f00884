// The outcome of a command, as shown to people and machines.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apply/table_counts.h"

namespace stagesync::report {

struct TableResult {
  std::string source;
  std::string target;
  std::string mode_requested;  // full | incremental
  std::string mode_used;       // full | ...
  std::string reason;          // why mode_used
  apply::TableCounts counts;
  bool planned = false;  // counts are a plan's prediction, nothing was written
  // mass-change guard (sync only)
  int64_t owned_before = 0;
  bool owned_before_exact = true;  // false: counted only as far as the guard needed (a lower bound)
  int64_t would_delete = 0;
  std::string guard_tripped;  // why the guard stopped (or would have stopped) the run; empty: passed
  bool guard_overridden = false;
  // verify only
  bool verified = false;
  bool matches = false;
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  std::string source_checksum;
  std::string target_checksum;
};

struct RunSummary {
  std::string command;  // sync | verify | check ...
  std::string run_id;
  std::string mode;
  std::string strategy;
  std::string outcome = "failed";  // succeeded | failed | differences | ...
  int exit_code = 1;
  double seconds = 0;
  std::string error;  // one line when failed (followed by the problems, one per line, for people)
  std::vector<std::string> problems;  // each problem or tripped table behind `error`, when there are several
  std::string backup_id;  // automatic backup taken by the run (truncate-first)
  std::vector<TableResult> tables;
  // plan with a `follow:` block: what follow gets and would change on the desktop (follow::plan_follow); else null.
  nlohmann::json follow;
};

}  // namespace stagesync::report
