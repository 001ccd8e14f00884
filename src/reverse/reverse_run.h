// `stagesync reverse`: mobile rows of the target reach the desktop exactly
// once, in one desktop transaction (SPEC 1.5, decision 0008).
//
// A run, each step a fixed number of round trips whatever the row count:
//   1. catalogs of both sides (one statement each), the configuration resolved (CheckFailed: exit 3)
//   2. the run lock (the forward sync's: they never interleave), bookkeeping, pending runs resolved
//   3. one REPEATABLE READ snapshot of the target: per entry, the rows that changed since the last
//      promoted run's snapshot (transaction ids, no clock) and differ from what was copied, and the
//      keys whose mobile row is gone; nothing to do: the run ends here, the desktop untouched
//   4. desktop transaction: temporary tables filled by COPY, every row judged against the desktop
//      (new, ours and unchanged on the desktop, edited there = conflict, collision), every value the
//      desktop column cannot hold refused (DataRefused: exit 5) before any desktop write
//   5. set-based writes, what was written recorded in a temporary table
//   6. that record copied to the target and committed there as *pending*, naming the desktop xid
//   7. desktop COMMIT, then the pending record promoted (bookkeeping and watermark become current)
// A run that dies anywhere is resolved by the next (reverse/pending.h).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "report/reporter.h"
#include "report/run_summary.h"

namespace stagesync::reverse {

struct ReverseOptions {
  std::vector<std::string> tables;  // --tables: cloud or desktop names
  double lock_wait_seconds = 0;
  bool plan_only = false;  // what a run would do: counts judged on the desktop, nothing written (rolled back)
};

// Runs (retrying transient faults per cfg.retry). Throws the run's typed errors.
report::RunSummary run_reverse(const config::Config& cfg, const ReverseOptions& options, report::Reporter& out);

// For `check`: every reverse entry resolved against both schemas (each problem
// once), conversions compiled on the desktop (nothing runs). Appends to facts/problems.
void check_reverse(const config::Config& cfg, std::vector<std::string>& facts, std::vector<std::string>& problems);

}  // namespace stagesync::reverse
