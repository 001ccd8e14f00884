// One cycle of `stagesync run`: a forward incremental sync, then the reverse
// sync when the configuration has `reverse:` entries; on a full cycle a full
// sync followed by verify instead of the incremental one. Each step is one
// ordinary command run (its own run record in the target, its own lock and
// transaction); a failing step is reported and the next direction still runs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "apply/table_counts.h"
#include "config/config.h"
#include "report/reporter.h"
#include "run/sync_run.h"

namespace stagesync::run {

// Runs `body` and turns every typed error it throws into its exit code,
// reporting the failure through `out.finished()` (the command line's guarded():
// errors become exit codes in one place). `body` returns the exit code of a
// command that ran to its end, after passing its summary to `out.finished()`.
using Guard = std::function<int(report::Reporter& out, const std::string& command, const std::function<int()>& body)>;

struct StepOutcome {
  std::string step;           // forward | reverse | verify
  std::string mode;           // incremental | full (forward); null otherwise
  std::string outcome;        // succeeded | failed | differences | skipped | interrupted
  int exit_code = 0;          // the command's exit code (docs/exit-codes.md); 0 when skipped
  std::string run_id;         // its run record in the target (empty: none written)
  std::string error;          // why it failed or was skipped (one line)
  apply::TableCounts totals;  // rows read, inserted, updated, deleted, rejected over its tables
  double seconds = 0;
};

struct CycleResult {
  bool full = false;
  std::vector<StepOutcome> steps;
  // The first failed step's exit code, else 0 (a skipped step is not a failure; an interrupted one is 130).
  int exit_code = 0;
  bool failed() const;
  bool interrupted() const;
  // "forward: <error>" of every failed step, joined by "; ".
  std::string error() const;
};

// The steps of one cycle, in order. Output of the steps goes to `out`, except
// their summaries (the cycle reports one line for all of them).
// `forward` runs the forward step (run_sync() when empty).
CycleResult run_cycle(const config::Config& cfg, bool full, const Guard& guard, report::Reporter& out,
                      const SyncFunction& forward = {});

}  // namespace stagesync::run
