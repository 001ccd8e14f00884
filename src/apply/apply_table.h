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

#include <functional>
#include <string>
#include <vector>

#include "apply/strategy.h"
#include "apply/table_counts.h"
#include "apply/table_sql.h"
#include "pg/pipeline.h"

namespace stagesync::apply {

// Every function adds its statements to `p` (one round trip for a whole phase
// of every table); the counts they fill in are valid once `p` has run, and a
// refusal (DataRefused) is thrown then.

// A foreign key of another table onto a synced table whose ON DELETE action
// (CASCADE, SET NULL, SET DEFAULT) would carry the sync's deletes into it.
struct Cascade {
  std::string constraint;
  std::string child;           // the referencing table (regclass text)
  std::string child_columns;   // its columns, quoted, comma separated
  std::string parent_columns;  // the referenced columns as t."col", ...
};
void find_cascades(pg::Pipeline& p, const TableSql& t, std::vector<Cascade>& out);
// Refuses (DataRefused) a swap over a table with such keys at once, and adds the
// counts that refuse a merge whose deletes would reach rows through one.
void refuse_cascades(pg::Pipeline& p, const TableSql& t, Strategy strategy, const std::vector<Cascade>& fks);

void delete_vanished(pg::Pipeline& p, const TableSql& t, Strategy strategy, TableCounts& counts);
void upsert(pg::Pipeline& p, const TableSql& t, Strategy strategy, TableCounts& counts);
// truncate-first's load: moves staged rows into the target `batch_rows` at a
// time, each batch its own statement (committed when run outside a transaction).
void insert_in_batches(pg::Connection& target, const TableSql& t, int64_t batch_rows, TableCounts& counts);
// What delete_vanished() + upsert() would do (inserted, updated, deleted),
// counted with the same clauses, writing nothing.
void predict(pg::Pipeline& p, const TableSql& t, Strategy strategy, TableCounts& out);
// Owned rows a merge would delete (no longer in the source), and all owned rows.
void count_vanished(pg::Pipeline& p, const TableSql& t, int64_t& out);
void count_owned(pg::Pipeline& p, const TableSql& t, int64_t& out);
// Both, for the mass-change guard, in one pass where the table allows.
// With `owned_needed` (guard::owned_rows_needed_sql: an SQL expression of
// the vanishing count) a keyed incremental table's owned rows are counted
// only as far as the guard needs (a few deletions need not scan a large
// table): `exact` says whether `owned` is the whole count or that lower bound.
void count_owned_and_vanished(pg::Pipeline& p, const TableSql& t, int64_t& owned, int64_t& vanishing,
                              const std::function<std::string(const std::string&)>& owned_needed = {},
                              bool* exact = nullptr);
// Rows in the target table that the sync does not own (for the summary).
void count_foreign(pg::Pipeline& p, const TableSql& t, int64_t& out);

}  // namespace stagesync::apply
