#include "catalog/table_schema.h"

#include "pg/sql.h"

namespace stagesync::catalog {

const Column* TableSchema::find(const std::string& column) const {
  for (const auto& c : columns)
    if (c.name == column) return &c;
  return nullptr;
}

std::string TableSchema::qualified_name() const { return pg::qualified(schema, name); }

std::string TableSchema::display_name() const {
  return (schema == "public" ? "" : schema + ".") + name;
}

std::optional<TableSchema> read_table(pg::Connection& conn, const std::string& name) {
  std::string quoted = pg::dotted_name(name);
  pg::Result rel = conn.exec(
      "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
      std::vector<pg::Param>{quoted});
  if (rel.rows() == 0) return std::nullopt;
  TableSchema t;
  t.schema = rel.text(0, 1);
  t.name = rel.text(0, 2);
  pg::Result cols = conn.exec(
      "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), tn.nspname, ty.typname, a.atttypid, "
      "       a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), "
      "       (a.attidentity <> '' OR a.attgenerated <> ''), ty.typcategory, "
      "       CASE WHEN a.atttypid IN (1042, 1043) AND a.atttypmod >= 4 THEN a.atttypmod - 4 ELSE -1 END, "
      "       ty.typname NOT IN ('json', 'xml', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle') "
      "FROM pg_catalog.pg_attribute a "
      "JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid "
      "JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace "
      "WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
      std::vector<pg::Param>{rel.text(0, 0)});
  for (int r = 0; r < cols.rows(); ++r) {
    Column c;
    c.name = cols.text(r, 0);
    c.type = cols.text(r, 1);
    c.base_type = pg::qualified(cols.text(r, 2), cols.text(r, 3));
    c.type_oid = static_cast<uint32_t>(cols.int64(r, 4));
    c.builtin_type = c.type_oid < 16384;  // FirstNormalObjectId: types created by users start here
    c.not_null = cols.boolean(r, 5);
    c.has_default = cols.boolean(r, 6);
    c.generated = cols.boolean(r, 7);
    c.category = cols.get(r, 8).empty() ? 'U' : cols.get(r, 8)[0];
    c.max_length = static_cast<int>(cols.int64(r, 9));
    c.comparable = cols.boolean(r, 10);
    t.columns.push_back(std::move(c));
  }
  return t;
}

}  // namespace stagesync::catalog
