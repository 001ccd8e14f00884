// The run history a target keeps: stagesync.runs, the table records that
// cascade from them (stagesync.table_runs) and the rows each run set aside
// (stagesync.rejects). A follower writes one run per batch, so the history
// is pruned by age (config `history: { keep_days: }`) after each forward
// run's COMMIT, in the round trip that drops its staging tables.
//
// Not pruned, whatever their age: a run still marked running (the next run
// marks it abandoned), and every run something else names: a table's last
// successful run and the run whose rejects its watermark carries
// (stagesync.table_state), a follower's last batch (stagesync.follow_state),
// a backup's run. At most kPruneRuns runs per call, oldest first: a backlog
// (an upgrade from a version that kept everything) is worked off a little
// per run instead of in one long statement after a batch.
#pragma once

#include <string>

#include "pg/pipeline.h"

namespace stagesync::state {

inline constexpr int kPruneRuns = 50;

// The statement deleting up to kPruneRuns runs started before $1 (a
// run_id_time(): run ids begin with their UTC start time, so the age is a
// range of the key), with their table records and rejects.
std::string prune_history_sql();

// Adds the pruning to `batch` as a best-effort statement (a failure is no
// failure of the run: the next run prunes). keep_days 0: adds nothing.
void prune_history_after(pg::Pipeline& batch, int keep_days);

}  // namespace stagesync::state
