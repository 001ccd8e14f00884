// `incremental: { capture: logical }` (per table or global): `sync --mode
// incremental` and `run`'s cycles read the changes of those tables from the
// desktop's logical decoding, through the same slot and batches as
// `stagesync follow --once` (decision 0012), instead of comparing the
// source's state with the target's.
//
// A capture run is a `follow --once`: the first one creates the slot and
// takes a full sync in its exported snapshot; later ones apply the decoded
// transactions in batches, each read by the keys it names (tables not
// captured logically are read as by an ordinary incremental run in the same
// snapshot). A desktop without logical WAL gets an ordinary incremental run
// and a warning saying why. It is not used (an ordinary sync runs, and says
// why) for a subset of tables (--tables: the slot's position covers every
// table), per-table transactions, a strategy other than merge, or `plan`.
#pragma once

#include <string>

#include "config/config.h"
#include "report/reporter.h"
#include "report/run_summary.h"
#include "run/sync_run.h"

namespace stagesync::follow {

// Whether `options` on `cfg` are a capture run; if a table asks for logical
// capture but these options cannot use it, `why_not` says why.
bool captures_logically(const config::Config& cfg, const run::SyncOptions& options, std::string& why_not);

// A run::SyncFunction: a capture run where captures_logically(), else run::run_sync().
// Throws what either throws.
report::RunSummary sync(const config::Config& cfg, const run::SyncOptions& options, report::Reporter& out);

}  // namespace stagesync::follow
