#include "init/catalog_reader.h"

#include <algorithm>

#include "pg/pipeline.h"
#include "pg/sql.h"

namespace stagesync::init {
namespace {

// Ordinary and partitioned tables visible on the search path, outside system schemas, stagesync's own
// schema and extensions (Supabase puts extension objects on the path).
const char* kListTables =
    "SELECT c.relname FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND pg_catalog.pg_table_is_visible(c.oid) "
    "  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'stagesync') AND n.nspname NOT LIKE 'pg\\_%' "
    "  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass "
    "                  AND d.objid = c.oid AND d.deptype = 'e') "
    "ORDER BY c.relname COLLATE \"C\"";

}  // namespace

const TableEntry* DatabaseCatalog::find(const std::string& name) const {
  for (const auto& t : tables)
    if (t.name == name) return &t;
  return nullptr;
}

PostgresCatalogReader::PostgresCatalogReader(pg::Connection& conn) : conn_(conn) {
  // Travels with the first statement: every transaction of this session is read-only from then on.
  conn_.defer("SET default_transaction_read_only = on");
}

DatabaseCatalog PostgresCatalogReader::read() {
  DatabaseCatalog out;
  out.where = conn_.describe();
  std::vector<std::string> names;
  pg::Result list = conn_.exec(kListTables);
  for (int i = 0; i < list.rows(); ++i) {
    std::string name = list.text(i, 0);
    // A configuration names "table" or "schema.table": a dot inside a name cannot be written.
    if (name.find('.') != std::string::npos) {
      out.unusable.push_back(name + ": its name contains a dot, which a configuration cannot name");
    } else {
      names.push_back(std::move(name));
    }
  }
  if (names.empty()) return out;
  catalog::Tables tables;
  catalog::Facts facts;
  std::vector<plan::TargetTrigger> triggers;
  pg::Pipeline p(conn_);
  std::vector<pg::Param> param{catalog::table_names_param(names)};
  p.add(catalog::read_tables_sql(), param, [&](pg::Result& r) { tables = catalog::tables_from(r, names); });
  p.add(catalog::unique_indexes_sql(), param, [&](pg::Result& r) { catalog::unique_indexes_from(r, names, facts); });
  p.add(catalog::foreign_keys_sql(), param, [&](pg::Result& r) { catalog::foreign_keys_from(r, names, facts); });
  p.add(catalog::column_fills_sql(), param, [&](pg::Result& r) { catalog::column_fills_from(r, names, facts); });
  p.add(plan::read_triggers_sql(), param, [&](pg::Result& r) { triggers = plan::triggers_from(r, names, tables); });
  p.run();
  for (const auto& n : names) {
    const auto& schema = tables.at(n);
    if (!schema) continue;  // dropped between the two statements
    TableEntry e;
    e.name = n;
    e.schema = *schema;
    e.facts = facts[n];
    for (const auto& t : triggers)
      if (t.table == n) e.triggers.push_back(t);
    out.tables.push_back(std::move(e));
  }
  return out;
}

std::vector<int64_t> PostgresCatalogReader::repeated_keys(const std::vector<KeyProbe>& probes) {
  std::vector<int64_t> out(probes.size(), 0);
  if (probes.empty()) return out;
  pg::Pipeline p(conn_);
  for (size_t i = 0; i < probes.size(); ++i) {
    std::vector<std::string> not_null;
    for (const auto& k : probes[i].key) not_null.push_back(pg::ident(k) + " IS NOT NULL");
    std::string cols = pg::column_list(probes[i].key);
    p.add("SELECT count(*) FROM (SELECT 1 FROM " + pg::dotted_name(probes[i].table) + " WHERE " +
              pg::join(not_null, " AND ") + " GROUP BY " + cols + " HAVING count(*) > 1) AS repeated",
          [&out, i](pg::Result& r) { out[i] = r.int64(0, 0); });
  }
  p.run();
  return out;
}

}  // namespace stagesync::init
