#include "sqlite/table_facts.h"

#include <algorithm>

#include "sqlite/catalog.h"
#include "sqlite/statement.h"

namespace stagesync::sqlite {

namespace {

// Primary key columns in key order; `integer_key` when the key is the rowid's alias.
std::vector<std::string> primary_key(Database& db, const std::string& table, bool& integer_key) {
  Statement s(db, "SELECT name, type FROM pragma_table_info(?1, 'main') WHERE pk > 0 ORDER BY pk");
  s.bind_text(1, table);
  std::vector<std::string> columns;
  std::string type;
  while (s.step()) {
    columns.push_back(s.text(0));
    type = s.text(1);
  }
  // The rowid's alias: a one-column key declared exactly INTEGER (any case) in a table with a rowid; the
  // table's index list then has no index for it.
  std::string upper = type;
  for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  integer_key = columns.size() == 1 && upper == "INTEGER";
  return columns;
}

void read_unique(Database& db, const std::string& table, catalog::TableFacts& facts, bool& integer_key) {
  std::vector<std::string> pk = primary_key(db, table, integer_key);
  std::vector<catalog::UniqueIndex> others;
  Statement list(db, "SELECT name, origin FROM pragma_index_list(?1, 'main') WHERE \"unique\" AND NOT partial");
  list.bind_text(1, table);
  Statement columns(db, "SELECT cid, name FROM pragma_index_info(?1, 'main') ORDER BY seqno");
  while (list.step()) {
    std::string name = list.text(0), origin = list.text(1);
    if (origin == "pk") {
      integer_key = false;  // WITHOUT ROWID or a key that is not the rowid's alias: it has its index
      continue;
    }
    catalog::UniqueIndex index;
    index.name = name;
    bool plain = true;
    columns.reset();
    columns.bind_text(1, name);
    while (columns.step()) {
      if (columns.int64(0) < 0) plain = false;  // -1 the rowid, -2 an expression
      index.columns.push_back(columns.text(1));
    }
    if (plain && !index.columns.empty()) others.push_back(std::move(index));
  }
  std::sort(others.begin(), others.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  if (!pk.empty()) facts.unique.push_back(catalog::UniqueIndex{"primary key", true, pk});
  for (auto& index : others) facts.unique.push_back(std::move(index));
}

void read_foreign_keys(Database& db, const std::string& table, catalog::TableFacts& facts) {
  Statement s(db, "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1, 'main') ORDER BY id, seq");
  s.bind_text(1, table);
  int64_t current = -1;
  while (s.step()) {
    if (s.int64(0) != current) {
      current = s.int64(0);
      catalog::ForeignKey fk;
      fk.constraint = table + ".fk" + std::to_string(current);
      fk.parent_schema = "main";
      fk.parent_table = s.text(1);
      facts.foreign_keys.push_back(std::move(fk));
    }
    catalog::ForeignKey& fk = facts.foreign_keys.back();
    fk.columns.push_back(s.text(2));
    fk.parent_columns.push_back(s.is_null(3) ? std::string() : s.text(3));
  }
  // REFERENCES parent without columns: the parent's primary key, by position.
  for (auto& fk : facts.foreign_keys) {
    if (std::find(fk.parent_columns.begin(), fk.parent_columns.end(), "") == fk.parent_columns.end()) continue;
    bool unused = false;
    std::vector<std::string> pk = primary_key(db, fk.parent_table, unused);
    if (pk.size() == fk.columns.size()) fk.parent_columns = pk;
  }
}

void read_fills(Database& db, const std::string& table, catalog::TableFacts& facts, bool integer_key) {
  Statement s(db, "SELECT name, dflt_value, hidden, pk FROM pragma_table_xinfo(?1, 'main') ORDER BY cid");
  s.bind_text(1, table);
  while (s.step()) {
    catalog::ColumnFill fill;
    bool filled = false;
    if (!s.is_null(1)) {
      fill.default_expr = s.text(1);
      filled = true;
    }
    if (s.int64(2) == 2 || s.int64(2) == 3) {
      fill.computed = true;
      filled = true;
    }
    if (integer_key && s.int64(3) == 1) {
      fill.identity = 'd';
      filled = true;
    }
    if (filled) facts.fills[s.text(0)] = std::move(fill);
  }
}

}  // namespace

catalog::Facts read_facts(Database& db, const std::vector<std::string>& names) {
  catalog::Facts out;
  catalog::Tables tables = read_tables(db, names);
  Statement kind(db, "SELECT type FROM main.sqlite_master WHERE name = ?1");
  for (const auto& wanted : names) {
    catalog::TableFacts& facts = out[wanted];
    const auto& t = tables.at(wanted);
    if (!t) continue;
    kind.reset();
    kind.bind_text(1, t->name);
    if (!kind.step() || kind.text(0) != "table") continue;  // a view has no keys or defaults
    bool integer_key = false;
    read_unique(db, t->name, facts, integer_key);
    read_foreign_keys(db, t->name, facts);
    read_fills(db, t->name, facts, integer_key);
  }
  return out;
}

std::vector<std::string> table_names(Database& db) {
  std::vector<std::string> out;
  Statement s(db,
              "SELECT name FROM main.sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' "
              "ESCAPE '\\' ORDER BY name");
  while (s.step()) out.push_back(s.text(0));
  return out;
}

}  // namespace stagesync::sqlite
