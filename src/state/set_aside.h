// stagesync.set_aside (metadata version 7, decision 0016): the rows currently
// set aside (NULL keys, skipped orphans, key collisions), per target table.
// A row is written once, by the run that set it aside, and stays while it
// stays set aside: a run adds the rows it judged and set aside, and removes
// the ones it released (read again, or gone at the source), in its own
// transaction. stagesync.rejects keeps, per run, the rows that run judged and
// set aside (its report).
#pragma once

#include <string>
#include <vector>

#include "pg/pipeline.h"

namespace stagesync::state {

// Adds to `p` (the run's target transaction) the statements that bring the
// set up to date with run `run_id`: the rows `released` lists (table_name,
// row_key) leave it; the tables in `replaced` (every row judged in this run:
// a full read) lose all their rows; the rows of the run's reject table
// `rejects` join it and are recorded for the run in stagesync.rejects.
// `table`: only that table's rows (a run with one transaction per table),
// else every table's.
void record_set_aside(pg::Pipeline& p, const std::string& run_id, const std::string& rejects,
                      const std::string& released, const std::vector<std::string>& replaced,
                      const std::string& table = "");

}  // namespace stagesync::state
