#include "source/postgres/newest_keys.h"

#include <vector>

#include "pg/sql.h"
#include "source/postgres/source_query.h"

namespace stagesync::source::postgres {
namespace {

// The key's rows grouped by their `by` value as the target stores it.
std::string by_groups(const plan::TablePlan& t, pg::Connection& source, const std::string& window) {
  const plan::StagedColumn& by = *t.column(t.duplicates.by);
  std::string keys = pg::column_list(t.key, "s");
  std::vector<std::string> present;
  for (const auto& k : t.key) present.push_back("s." + pg::ident(k) + " IS NOT NULL");
  std::string value = "CAST(s." + pg::ident(by.name) + " AS " + by.target.type + ")";
  std::string w = window.empty() ? "" : "(" + window + ") IS TRUE";
  return "SELECT " + keys + ", " + value + " AS " + pg::ident(by.name) + ", count(*) AS n" +
         (w.empty() ? "" : ", bool_or(s.w) AS w") + " FROM (" + key_select(t, source, w, {by.name}) + ") s WHERE " +
         pg::join(present, " AND ") + " GROUP BY " + keys + ", " + value;
}

}  // namespace

std::string newest_keys(const plan::TablePlan& t, pg::Connection& source, const std::string& window) {
  std::string keys = pg::column_list(t.key, "g");
  std::string by = pg::ident(t.duplicates.by);
  return "SELECT " + keys + ", max(g." + by + ") AS " + by + ", " + (window.empty() ? "false" : "bool_or(g.w)") +
         " AS w, bool_or(g.n > 1) AS tie, sum(g.n)::bigint AS n FROM (" + by_groups(t, source, window) +
         ") g GROUP BY " + keys;
}

std::string newest_ties(const plan::TablePlan& t, pg::Connection& source) {
  return "SELECT CASE WHEN EXISTS (SELECT 1 FROM (" + by_groups(t, source, "") + ") g WHERE g.n > 1) THEN 1 ELSE 0 END";
}

}  // namespace stagesync::source::postgres
