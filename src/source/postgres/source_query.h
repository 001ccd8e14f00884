// The SELECT that reads one table from the source, already in target shape:
// staged columns in order (named as the target columns), each cast to its
// staging type, lookups joined, the scope applied.
#pragma once

#include <string>
#include <vector>

#include "pg/connection.h"
#include "plan/sync_plan.h"
#include "stage/staging_table.h"

namespace stagesync::source::postgres {

// A SELECT statement. Scope values are quoted with `source.literal()` since a
// COPY statement accepts no parameters. `where`, when not empty, is one more
// condition on the source table (alias `t`), such as incremental's change window.
std::string source_select(const plan::TablePlan& table, pg::Connection& source, const std::string& where = "");

// The key columns of source_select()'s rows (same names, casts and scope,
// lookup joins only when a key column is looked up).
// For key digests: reading only keys skips the joins and the other columns.
// `also`, when not empty, is one more column (an expression over the source
// table, alias t, named w); `columns` are more staged columns (by name, none looked up).
std::string key_select(const plan::TablePlan& table, pg::Connection& source, const std::string& also = "",
                       const std::vector<std::string>& columns = {});

// "SELECT count(*), count(*) FILTER (WHERE <window>)" over the source table's
// in-scope rows (alias t): the rows source_select() reads, and how many of them
// are in `window`.
std::string source_count(const plan::TablePlan& table, pg::Connection& source, const std::string& window);

// One lookup's value per match value: the match columns and `take`, the
// smallest non-NULL `take` where several rows match.
// `only`, when not empty, is one more condition on the lookup table (unqualified columns).
std::string lookup_select(const plan::ResolvedLookup& lookup, const std::string& only = "");

// `COPY (<select>) TO STDOUT (FORMAT binary)`.
std::string binary_copy_out(const std::string& select);
// `COPY (source_select) TO STDOUT (FORMAT binary)`.
std::string source_copy(const plan::TablePlan& table, pg::Connection& source, const std::string& where = "");
// Fills a target COPY (FORMAT binary) with the rows of `select` on `source`.
stage::CopyFill copy_from(pg::Connection& source, const std::string& select);

}  // namespace stagesync::source::postgres
