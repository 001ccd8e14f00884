// What a PostgreSQL source's snapshot tells incremental runs: the source's
// identity, the transaction snapshot the rows are read in (a watermark,
// delta/watermark.h), and the row counts and row versions of the tables
// lookups read.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "delta/watermark.h"
#include "pg/connection.h"
#include "plan/sync_plan.h"

namespace stagesync::source::postgres {

// "system identifier/database oid/database name" when the role may read
// pg_control_system(), else "database oid/database name". Call outside a
// transaction (a refused function call would abort it).
std::string source_identity(pg::Connection& source);

// The snapshot of the transaction open on `source`. Call it as the first
// statement of the REPEATABLE READ transaction that reads the rows, so the
// snapshot it reports is the one the rows are read in.
delta::Watermark current_snapshot(pg::Connection& source, const std::string& identity);

// For a table with lookups: empty when none of the lookup tables counted in
// `now.lookup_rows` changed in the window `since` -> `now` (no row version in
// the window, row count as recorded in `since`), else which one changed and
// how. Runs inside the source snapshot.
std::string lookup_changes(pg::Connection& source, const delta::Watermark& since, const delta::Watermark& now);
// Row counts of the table's lookup tables in the current snapshot.
// `known` holds counts this snapshot already has (tables read whole, no scope).
std::map<std::string, int64_t> lookup_rows(const plan::TablePlan& table, pg::Connection& source,
                                           const std::map<std::string, int64_t>& known);

}  // namespace stagesync::source::postgres
