// Apply: change one target table from its prepared staging table. Runs inside
// the caller's transaction; commits nothing. Rows the sync does not own (owner
// and scope) are never in the set it deletes or updates.
//
//  merge  delete_vanished(): owned rows whose key is not staged
//         upsert():          update owned rows whose compared values differ,
//                            insert staged rows whose key is not in the target
//         keyless tables compare whole rows as multisets.
//  swap   delete_vanished(): every owned row;  upsert(): insert every staged row
//
// delete_vanished() must run children-first across tables, upsert() parents-first.
#pragma once

#include "apply/strategy.h"
#include "apply/table_counts.h"
#include "apply/table_sql.h"
#include "pg/connection.h"

namespace stagesync::apply {

void delete_vanished(pg::Connection& target, const TableSql& t, Strategy strategy, TableCounts& counts);
void upsert(pg::Connection& target, const TableSql& t, Strategy strategy, TableCounts& counts);

// truncate-first's load: moves staged rows into the target `batch_rows` at a
// time, each batch its own statement (committed when run outside a transaction).
void insert_in_batches(pg::Connection& target, const TableSql& t, int64_t batch_rows, TableCounts& counts);

// What delete_vanished() + upsert() would do (inserted, updated, deleted),
// counted with the same clauses, writing nothing.
TableCounts predict(pg::Connection& target, const TableSql& t, Strategy strategy);

// Owned rows a merge would delete (no longer in the source), and all owned rows.
int64_t count_vanished(pg::Connection& target, const TableSql& t);
int64_t count_owned(pg::Connection& target, const TableSql& t);
// Rows in the target table that the sync does not own (for the summary).
int64_t count_foreign(pg::Connection& target, const TableSql& t);

}  // namespace stagesync::apply
