// The forward half of the round trip (SPEC 1.5): a desktop row that reverse
// sync wrote is never sent back up as a desktop row. Forward's judge step runs
// in the target, where the reverse bookkeeping is, so it drops such staged rows
// before anything else judges them (they are not collisions and are not
// reported as such). A row counts as reverse-written when its key is in the
// bookkeeping of a reverse entry whose cloud table is this forward table's
// target and whose desktop table is its source, with a desktop row hash
// (a key that collided with a desktop row reverse never wrote has none), in
// the promoted bookkeeping or in a pending run's (which may not have
// committed on the desktop: then the row is held back for one run, never sent twice).
#pragma once

#include <string>
#include <vector>

#include "apply/table_sql.h"
#include "config/config.h"
#include "pg/pipeline.h"

namespace stagesync::reverse {

// The reverse entry whose rows this forward table must leave out, or nullptr
// (none, or its key columns are not all staged by the forward table).
const config::Reverse* reverse_entry_for(const config::Config& cfg, const apply::TableSql& table);

// The bookkeeping tables' CREATE statements, one per element (for a pipeline).
std::vector<std::string> book_statements();

// Adds to `p` the deletion of `table`'s staged rows that reverse sync wrote;
// `dropped` is set when the pipeline runs.
void exclude_reverse_written(pg::Pipeline& p, const apply::TableSql& table, const config::Reverse& entry,
                             int64_t& dropped);

}  // namespace stagesync::reverse
