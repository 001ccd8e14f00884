#include "init/sqlite_catalog_reader.h"

#include <cctype>

#include "pg/sql.h"
#include "sqlite/catalog.h"
#include "sqlite/statement.h"
#include "sqlite/table_facts.h"

namespace stagesync::init {
namespace {

// Every table of the main schema with its kind ('table', 'view', 'virtual', 'shadow'), SQLite's own sqlite_*
// tables left out, bytewise by name; for a virtual table, its CREATE statement (to name the module).
const char* kListTables =
    "SELECT l.name, l.type, (SELECT m.sql FROM main.sqlite_master m WHERE m.name = l.name) "
    "FROM pragma_table_list AS l WHERE l.schema = 'main' AND l.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
    "ORDER BY l.name COLLATE BINARY";

// "fts5" from "CREATE VIRTUAL TABLE docs USING fts5(body)"; "" when the statement does not say.
std::string module_of(const std::string& create) {
  std::string upper = create;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  size_t at = upper.find(" USING ");
  if (at == std::string::npos) return "";
  at += 7;
  while (at < create.size() && create[at] == ' ') ++at;
  size_t end = at;
  while (end < create.size() && (std::isalnum(static_cast<unsigned char>(create[end])) || create[end] == '_')) ++end;
  return create.substr(at, end - at);
}

}  // namespace

SqliteCatalogReader::SqliteCatalogReader(sqlite::Database& db, std::string where) : db_(db), where_(std::move(where)) {}

DatabaseCatalog SqliteCatalogReader::read() {
  DatabaseCatalog out;
  out.where = where_;
  std::vector<std::string> names;
  sqlite::Statement list(db_, kListTables);
  while (list.step()) {
    std::string name = list.text(0), type = list.text(1);
    if (type == "view" || type == "shadow") continue;  // not offered (see the header); not a problem either
    if (type == "virtual") {
      std::string module = module_of(list.text(2));
      out.unusable.push_back(name + ": a virtual table" + (module.empty() ? "" : " (" + module + ")") +
                             ", whose rows a module computes (e.g. a full-text index of another table): not "
                             "offered; name it in `tables:` yourself if the target keeps its rows");
    } else if (name.find('.') != std::string::npos) {
      // A configuration names "table" or "schema.table": a dot inside a name cannot be written.
      out.unusable.push_back(name + ": its name contains a dot, which a configuration cannot name");
    } else {
      names.push_back(std::move(name));
    }
  }
  if (names.empty()) return out;
  catalog::Tables tables = sqlite::read_tables(db_, names);
  catalog::Facts facts = sqlite::read_facts(db_, names);
  for (const auto& n : names) {
    const auto& schema = tables.at(n);
    if (!schema) continue;  // not possible inside a snapshot; as PostgresCatalogReader, a vanished table is left out
    TableEntry e;
    e.name = n;
    e.schema = *schema;
    e.facts = facts[n];
    out.tables.push_back(std::move(e));
  }
  return out;
}

std::vector<int64_t> SqliteCatalogReader::repeated_keys(const std::vector<KeyProbe>& probes) {
  std::vector<int64_t> out;
  out.reserve(probes.size());
  for (const auto& probe : probes) {
    // pg::ident always double-quotes, doubling inner quotes: SQLite's quoting of identifiers as well.
    std::vector<std::string> not_null, group;
    for (const auto& k : probe.key) {
      not_null.push_back(pg::ident(k) + " IS NOT NULL");
      group.push_back(pg::ident(k) + " COLLATE BINARY");
    }
    sqlite::Statement count(db_, "SELECT count(*) FROM (SELECT 1 FROM main." + pg::ident(probe.table) + " WHERE " +
                                     pg::join(not_null, " AND ") + " GROUP BY " + pg::join(group, ", ") +
                                     " HAVING count(*) > 1)");
    out.push_back(count.step() ? count.int64(0) : 0);
  }
  return out;
}

}  // namespace stagesync::init
