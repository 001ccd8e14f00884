#include "catalog/table_schema.h"

#include "pg/sql.h"

namespace stagesync::catalog {

const Column* TableSchema::find(const std::string& column) const {
  for (const auto& c : columns)
    if (c.name == column) return &c;
  return nullptr;
}

std::string TableSchema::qualified_name() const { return pg::qualified(schema, name); }

std::string TableSchema::display_name() const { return (schema == "public" ? "" : schema + ".") + name; }

std::string read_tables_sql() {
  // $1: the configured names (text[]). One row per column, or one row with a
  // NULL oid for a name that is no table, view or foreign table.
  return "SELECT n.ord, c.oid, ns.nspname, c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
         "       tn.nspname, ty.typname, a.atttypid, a.attnotnull, "
         "       (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), "
         "       (a.attidentity <> '' OR a.attgenerated <> ''), ty.typcategory, "
         "       CASE WHEN a.atttypid IN (1042, 1043) AND a.atttypmod >= 4 THEN a.atttypmod - 4 ELSE -1 END, "
         "       ty.typname NOT IN ('json', 'xml', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle') "
         "FROM unnest($1::text[]) WITH ORDINALITY n(name, ord) "
         "LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(n.name) AND c.relkind IN ('r', 'p', 'v', "
         "'m', 'f') "
         "LEFT JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace "
         "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
         "LEFT JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid "
         "LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace "
         "ORDER BY n.ord, a.attnum";
}

namespace {
std::string quoted_names(const std::vector<std::string>& names) {
  std::vector<std::string> quoted;
  for (const auto& n : names) quoted.push_back(pg::dotted_name(n));
  return pg::text_array(quoted);
}
}  // namespace

Tables tables_from(const pg::Result& cols, const std::vector<std::string>& names) {
  Tables out;
  for (const auto& n : names) out[n] = std::nullopt;
  for (int r = 0; r < cols.rows(); ++r) {
    if (cols.is_null(r, 1)) continue;
    size_t ord = static_cast<size_t>(cols.int64(r, 0));
    std::optional<TableSchema>& t = out[names.at(ord - 1)];
    if (!t) {
      t = TableSchema{};
      t->schema = cols.text(r, 2);
      t->name = cols.text(r, 3);
    }
    if (cols.is_null(r, 4)) continue;  // a table without columns
    Column c;
    c.name = cols.text(r, 4);
    c.type = cols.text(r, 5);
    c.base_type = pg::qualified(cols.text(r, 6), cols.text(r, 7));
    c.type_oid = static_cast<uint32_t>(cols.int64(r, 8));
    c.builtin_type = c.type_oid < 16384;  // FirstNormalObjectId: types created by users start here
    c.not_null = cols.boolean(r, 9);
    c.has_default = cols.boolean(r, 10);
    c.generated = cols.boolean(r, 11);
    c.category = cols.get(r, 12).empty() ? 'U' : cols.get(r, 12)[0];
    c.max_length = static_cast<int>(cols.int64(r, 13));
    c.comparable = cols.boolean(r, 14);
    t->columns.push_back(std::move(c));
  }
  return out;
}

Tables read_tables(pg::Connection& conn, const std::vector<std::string>& names) {
  if (names.empty()) return {};
  return tables_from(conn.exec(read_tables_sql(), std::vector<pg::Param>{quoted_names(names)}), names);
}

std::optional<TableSchema> read_table(pg::Connection& conn, const std::string& name) {
  return read_tables(conn, {name}).at(name);
}

std::string table_names_param(const std::vector<std::string>& names) { return quoted_names(names); }

}  // namespace stagesync::catalog
