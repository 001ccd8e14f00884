// The keys an incremental run deletes from a target table: a work table in
// the target (stage::work_table_name(run, index, "_d")) with the table's key
// columns, filled by whatever found the deletions (key-set reconciliation, a
// source's fingerprints) and read by the apply (apply::TableSql::set_deletions()).
#pragma once

#include <cstddef>
#include <string>

#include "apply/table_sql.h"
#include "pg/connection.h"

namespace stagesync::delta {

// Creates (deferred) the empty deletions table for table `index` of run
// `run_id`; returns its qualified name.
std::string deletions_table(pg::Connection& target, const apply::TableSql& table, const std::string& run_id,
                            size_t index);

}  // namespace stagesync::delta
