#include "stage/source_query.h"

#include "pg/sql.h"

namespace stagesync::stage {

namespace {

std::vector<std::string> scope_conditions(const plan::TablePlan& table, pg::Connection& source) {
  std::vector<std::string> conds;
  for (const auto& [col, value] : table.scope) conds.push_back("t." + pg::ident(col) + " = " + source.literal(value));
  return conds;
}

}  // namespace

std::string lookup_select(const plan::ResolvedLookup& l) {
  std::string match = pg::column_list(l.match);
  std::vector<std::string> not_null;
  for (const auto& m : l.match) not_null.push_back(pg::ident(m) + " IS NOT NULL");
  return "SELECT DISTINCT ON (" + match + ") " + match + ", " + pg::ident(l.take) + " FROM " + l.from.qualified_name() +
         " WHERE " + pg::join(not_null, " AND ") + " ORDER BY " + match + ", " + pg::ident(l.take) + " NULLS LAST";
}

std::string source_select(const plan::TablePlan& table, pg::Connection& source, const std::string& where) {
  std::vector<std::string> exprs;
  for (const auto& c : table.columns) {
    std::string from = c.lookup < 0 ? "t." + pg::ident(c.name)
                                    : "l" + std::to_string(c.lookup) + "." + pg::ident(table.lookups[c.lookup].take);
    exprs.push_back(from + "::" + c.stage_type + " AS " + pg::ident(c.name));
  }
  std::string sql = "SELECT " + pg::join(exprs, ", ") + " FROM " + table.source.qualified_name() + " t";
  // Each lookup is one hash join against the distinct match values of its
  // table; where several rows match, the smallest non-NULL value is taken so
  // the result does not depend on physical row order.
  for (size_t i = 0; i < table.lookups.size(); ++i) {
    const auto& l = table.lookups[i];
    std::string alias = "l" + std::to_string(i);
    std::vector<std::string> on;
    for (const auto& m : l.match) on.push_back(alias + "." + pg::ident(m) + " = t." + pg::ident(m));
    sql += " LEFT JOIN (" + lookup_select(l) + ") " + alias + " ON " + pg::join(on, " AND ");
  }
  std::vector<std::string> conds = scope_conditions(table, source);
  if (!where.empty()) conds.push_back("(" + where + ")");
  if (!conds.empty()) sql += " WHERE " + pg::join(conds, " AND ");
  return sql;
}

std::string source_count(const plan::TablePlan& table, pg::Connection& source, const std::string& window) {
  std::vector<std::string> conds = scope_conditions(table, source);
  return "SELECT count(*), count(*) FILTER (WHERE " + window + ") FROM " + table.source.qualified_name() + " t" +
         (conds.empty() ? "" : " WHERE " + pg::join(conds, " AND "));
}

std::string binary_copy_out(const std::string& select) { return "COPY (" + select + ") TO STDOUT (FORMAT binary)"; }

std::string source_copy(const plan::TablePlan& table, pg::Connection& source, const std::string& where) {
  return binary_copy_out(source_select(table, source, where));
}

}  // namespace stagesync::stage
