#include "state/history.h"

namespace stagesync::state {

std::string prune_history_sql() {
  return "WITH old AS (SELECT r.run_id FROM stagesync.runs r "
         "WHERE r.run_id < pg_catalog.to_char(pg_catalog.timezone('UTC', pg_catalog.now()) - "
         "pg_catalog.make_interval(days => $1::int), 'YYYYMMDD\"T\"HH24MISS') "
         "AND r.status <> 'running' "
         "AND NOT EXISTS (SELECT 1 FROM stagesync.table_state s WHERE s.last_run_id = r.run_id "
         "OR s.watermark ->> 'rejects_run' = r.run_id) "
         "AND NOT EXISTS (SELECT 1 FROM stagesync.follow_state f WHERE f.last_run_id = r.run_id) "
         "AND NOT EXISTS (SELECT 1 FROM stagesync.backups b WHERE b.run_id = r.run_id) "
         "ORDER BY r.run_id LIMIT " +
         std::to_string(kPruneRuns) +
         "), rejected AS (DELETE FROM stagesync.rejects x USING old WHERE x.run_id = old.run_id) "
         "DELETE FROM stagesync.runs r USING old WHERE r.run_id = old.run_id";
}

void prune_history_after(pg::Pipeline& batch, int keep_days) {
  if (keep_days <= 0) return;
  batch.add_best_effort(prune_history_sql(), std::vector<pg::Param>{std::to_string(keep_days)});
}

}  // namespace stagesync::state
