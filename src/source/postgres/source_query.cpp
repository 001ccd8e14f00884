#include "source/postgres/source_query.h"

#include <algorithm>
#include <iterator>

#include "pg/copy_pipe.h"
#include "pg/sql.h"

namespace stagesync::source::postgres {

std::string lookup_select(const plan::ResolvedLookup& l, const std::string& only) {
  std::string match = pg::column_list(l.match);
  std::vector<std::string> not_null;
  for (const auto& m : l.match) not_null.push_back(pg::ident(m) + " IS NOT NULL");
  if (!only.empty()) not_null.push_back(only);
  std::string where = " FROM " + l.from.qualified_name() + " WHERE " + pg::join(not_null, " AND ");
  // Built-in ordered types have min(), which picks the same value as the
  // DISTINCT ON below (the smallest non-NULL one, by the column's collation)
  // from a hash aggregate, without sorting the whole table.
  static const char* const kWithMin[] = {"int2", "int4",      "int8",        "numeric", "float4",  "float8",
                                         "date", "timestamp", "timestamptz", "text",    "varchar", "bpchar"};
  const catalog::Column* take = l.from.find(l.take);
  if (take && std::any_of(std::begin(kWithMin), std::end(kWithMin),
                          [&](const char* type) { return take->base_type == pg::qualified("pg_catalog", type); })) {
    return "SELECT " + match + ", min(" + pg::ident(l.take) + ") AS " + pg::ident(l.take) + where + " GROUP BY " +
           match;
  }
  return "SELECT DISTINCT ON (" + match + ") " + match + ", " + pg::ident(l.take) + where + " ORDER BY " + match +
         ", " + pg::ident(l.take) + " NULLS LAST";
}

namespace {

std::vector<std::string> scope_conditions(const plan::TablePlan& table, pg::Connection& source) {
  std::vector<std::string> conds;
  for (const auto& [col, value] : table.scope) conds.push_back("t." + pg::ident(col) + " = " + source.literal(value));
  return conds;
}

// A staged column's value read from the source (alias t, lookups l<i>), cast to its staging type.
std::string staged_expr(const plan::TablePlan& table, const plan::StagedColumn& c) {
  std::string from = c.lookup < 0 ? "t." + pg::ident(c.name)
                                  : "l" + std::to_string(c.lookup) + "." + pg::ident(table.lookups[c.lookup].take);
  return from + "::" + c.stage_type + " AS " + pg::ident(c.name);
}

// "SELECT <exprs> FROM <source> t [lookup joins] [WHERE scope and where]".
// With lookups and a `where` (a change window, a chunk of keys), the selected
// rows are read first and each lookup aggregates only the match values they
// hold, not its whole table.
std::string select_from(const plan::TablePlan& table, pg::Connection& source, const std::vector<std::string>& exprs,
                        bool with_lookups, const std::string& where) {
  with_lookups = with_lookups && !table.lookups.empty();
  std::vector<std::string> conds = scope_conditions(table, source);
  if (!where.empty()) conds.push_back("(" + where + ")");
  std::string filter = conds.empty() ? "" : " WHERE " + pg::join(conds, " AND ");
  bool selected_first = with_lookups && !where.empty();
  std::string sql;
  if (selected_first) {
    // PostgreSQL 12+ would inline the CTE otherwise; before 12 every CTE is materialized.
    sql = std::string("WITH w AS ") + (source.server_version() >= 120000 ? "MATERIALIZED " : "") + "(SELECT * FROM " +
          table.source.qualified_name() + " t" + filter + ") SELECT " + pg::join(exprs, ", ") + " FROM w t";
  } else {
    sql = "SELECT " + pg::join(exprs, ", ") + " FROM " + table.source.qualified_name() + " t";
  }
  // Each lookup is one hash join against the distinct match values of its
  // table; where several rows match, the smallest non-NULL value is taken so
  // the result does not depend on physical row order.
  for (size_t i = 0; with_lookups && i < table.lookups.size(); ++i) {
    const auto& l = table.lookups[i];
    std::string alias = "l" + std::to_string(i);
    std::vector<std::string> on;
    for (const auto& m : l.match) on.push_back(alias + "." + pg::ident(m) + " = t." + pg::ident(m));
    std::string only =
        selected_first ? "(" + pg::column_list(l.match) + ") IN (SELECT " + pg::column_list(l.match, "w") + " FROM w)"
                       : "";
    sql += " LEFT JOIN (" + lookup_select(l, only) + ") " + alias + " ON " + pg::join(on, " AND ");
  }
  return selected_first ? sql : sql + filter;
}

}  // namespace

std::string source_select(const plan::TablePlan& table, pg::Connection& source, const std::string& where) {
  std::vector<std::string> exprs;
  for (const auto& c : table.columns) exprs.push_back(staged_expr(table, c));
  return select_from(table, source, exprs, true, where);
}

std::string key_select(const plan::TablePlan& table, pg::Connection& source, const std::string& also,
                       const std::vector<std::string>& columns) {
  std::vector<std::string> exprs;
  bool looked_up = false;
  for (const auto& k : table.key) {
    const plan::StagedColumn* c = table.column(k);
    exprs.push_back(staged_expr(table, *c));
    looked_up = looked_up || c->lookup >= 0;
  }
  for (const auto& name : columns) exprs.push_back(staged_expr(table, *table.column(name)));
  if (!also.empty()) exprs.push_back(also + " AS w");
  return select_from(table, source, exprs, looked_up, "");
}

std::string source_count(const plan::TablePlan& table, pg::Connection& source, const std::string& window) {
  std::vector<std::string> conds = scope_conditions(table, source);
  return "SELECT count(*), count(*) FILTER (WHERE " + window + ") FROM " + table.source.qualified_name() + " t" +
         (conds.empty() ? "" : " WHERE " + pg::join(conds, " AND "));
}

std::string binary_copy_out(const std::string& select) { return "COPY (" + select + ") TO STDOUT (FORMAT binary)"; }

stage::CopyFill copy_from(pg::Connection& source, const std::string& select) {
  return [&source, copy_out = binary_copy_out(select)](pg::CopyIn& in) {
    return pg::pipe_copy(source, copy_out, in, nullptr);
  };
}

std::string source_copy(const plan::TablePlan& table, pg::Connection& source, const std::string& where) {
  return binary_copy_out(source_select(table, source, where));
}

}  // namespace stagesync::source::postgres
