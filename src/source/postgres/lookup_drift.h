// Rows whose stored lookup value is no longer the source's.
//
// A lookup fills a column from another source table. When that table changed
// since the last run (rows inserted, updated, deleted: deletions leave no row
// version to find), the rows of this table that depend on the change did not
// change themselves, so the change window does not contain them. Instead of
// re-reading the table, compare: the source's current lookup (one row per
// match value) is copied to the target, and every target row whose stored
// value differs from it is selected for reading again. Whatever happened to
// the lookup table, a row whose value is still right is left alone, and one
// whose value is wrong is found.
#pragma once

#include <string>
#include <vector>

#include "pg/connection.h"
#include "plan/sync_plan.h"
#include "stage/copy_chain.h"

namespace stagesync::source::postgres {

// SELECTs on the target (key columns in staging types) of the rows of `table`
// whose lookup values differ from the source's now. Creates work tables
// stage::work_table_name(run_id, index, "_l<n>") (added to `created`, the
// CREATE deferred) and adds the copies that fill them from the source to
// `copies` (they read `source`; run inside its snapshot, before the SELECTs). Requires
// lookups_comparable(table).
std::vector<std::string> lookup_drift(const plan::TablePlan& table, pg::Connection& source, pg::Connection& target, const std::string& run_id,
                                      size_t index, std::vector<std::string>& created,
                                      std::vector<stage::CopyChain::Copy>& copies);

}  // namespace stagesync::source::postgres
