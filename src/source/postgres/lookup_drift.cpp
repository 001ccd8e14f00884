#include "source/postgres/lookup_drift.h"

#include "pg/sql.h"
#include "source/postgres/source_query.h"
#include "stage/staging_table.h"

namespace stagesync::source::postgres {

std::vector<std::string> lookup_drift(const plan::TablePlan& t, pg::Connection& source, pg::Connection& target,
                                      const std::string& run_id,
                                      size_t index, std::vector<std::string>& created,
                                      std::vector<stage::CopyChain::Copy>& copies) {
  std::vector<std::string> out;
  std::vector<std::string> keys;
  for (const auto& k : t.key) keys.push_back("c." + pg::ident(k) + "::" + t.column(k)->stage_type);
  for (size_t i = 0; i < t.lookups.size(); ++i) {
    const plan::ResolvedLookup& l = t.lookups[i];
    const plan::StagedColumn* filled = nullptr;
    for (const auto& c : t.columns)
      if (c.lookup == static_cast<int>(i)) filled = &c;
    if (!filled) continue;
    std::vector<std::string> ddl, casts, names, on;
    for (const auto& m : l.match) {
      const plan::StagedColumn* mc = t.column(m);
      ddl.push_back(pg::ident(m) + " " + mc->stage_type);
      casts.push_back("x." + pg::ident(m) + "::" + mc->stage_type);
      names.push_back(m);
      on.push_back("v." + pg::ident(m) + " = c." + pg::ident(m));
    }
    std::string name = stage::create_work_table(target, stage::work_table_name(run_id, index, "_l" + std::to_string(i)),
                                                pg::join(ddl, ", ") + ", v " + filled->stage_type);
    created.push_back(name);
    copies.push_back(stage::CopyChain::Copy{
        copy_from(source, "SELECT " + pg::join(casts, ", ") + ", x." + pg::ident(l.take) + "::" + filled->stage_type +
                              " FROM (" + lookup_select(l) + ") x"),
        "COPY " + name + " (" + pg::column_list(names) + ", v) FROM STDIN (FORMAT binary)",
        {"ANALYZE " + name},
        nullptr});
    out.push_back("SELECT " + pg::join(keys, ", ") + " FROM " + t.target.qualified_name() + " c LEFT JOIN " + name +
                  " v ON " + pg::join(on, " AND ") + " WHERE c." + pg::ident(filled->name) + "::" + filled->stage_type +
                  " IS DISTINCT FROM v.v");
  }
  return out;
}

}  // namespace stagesync::source::postgres
