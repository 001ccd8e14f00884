#include "state/set_aside.h"

#include "pg/sql.h"

namespace stagesync::state {
namespace {

std::vector<pg::Param> values(const pg::Params& p) { return {p.values().begin(), p.values().end()}; }

}  // namespace

void record_set_aside(pg::Pipeline& p, const std::string& run_id, const std::string& rejects,
                      const std::string& released, const std::vector<std::string>& replaced, const std::string& table) {
  // The one table's rows (alias r), or every table's.
  auto only = [&table](pg::Params& params) {
    return table.empty() ? std::string("true") : "r.table_name = " + params.add(table);
  };
  {
    // Few released rows against the whole set: its (table_name, row_key) index.
    pg::Params params;
    std::string where = only(params);  // (before values(): arguments are evaluated in any order)
    p.add("DELETE FROM stagesync.set_aside x USING " + released +
              " r WHERE x.table_name = r.table_name AND x.row_key = r.row_key AND " + where,
          values(params));
  }
  if (!replaced.empty()) {
    pg::Params params;
    std::string tables = params.add(pg::text_array(replaced)), where = only(params);
    p.add("DELETE FROM stagesync.set_aside r WHERE r.table_name = ANY (" + tables + "::text[]) AND " + where,
          values(params));
  }
  pg::Params params;
  std::string run = params.add(run_id), where = only(params);
  p.add(
      "INSERT INTO stagesync.set_aside (table_name, row_key, column_name, reason, run_id) "
      "SELECT r.table_name, r.row_key, r.column_name, r.reason, " +
          run + " FROM " + rejects + " r WHERE " + where,
      values(params));
  p.add(
      "INSERT INTO stagesync.rejects (run_id, table_name, row_key, column_name, reason) "
      "SELECT " +
          run + ", r.table_name, r.row_key, r.column_name, r.reason FROM " + rejects + " r WHERE " + where,
      values(params));
}

}  // namespace stagesync::state
