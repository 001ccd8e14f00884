#include "state/history.h"

#include <ctime>

#include "state/metadata.h"

namespace stagesync::state {

std::string prune_history_sql() {
  return "WITH old AS (SELECT r.run_id FROM stagesync.runs r "
         "WHERE r.run_id < $1 "
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
  std::time_t cutoff = std::time(nullptr) - static_cast<std::time_t>(keep_days) * 24 * 3600;
  batch.add_best_effort(prune_history_sql(), std::vector<pg::Param>{run_id_time(cutoff)});
}

}  // namespace stagesync::state
