#include "catalog/table_facts.h"

#include <cctype>

namespace stagesync::catalog {

bool ColumnFill::serial() const { return default_expr.rfind("nextval(", 0) == 0; }

bool ColumnFill::constant_text(std::string& value) const {
  // pg_get_expr writes a string constant as 'text' or 'text'::type (quotes doubled inside).
  const std::string& e = default_expr;
  if (e.size() < 2 || e[0] != '\'') return false;
  std::string v;
  size_t i = 1;
  for (; i < e.size(); ++i) {
    if (e[i] == '\'') {
      if (i + 1 < e.size() && e[i + 1] == '\'') {
        v += '\'';
        ++i;
        continue;
      }
      break;
    }
    v += e[i];
  }
  if (i >= e.size()) return false;
  std::string rest = e.substr(i + 1);
  // Only a cast to a type name may follow ('D'::bpchar, 'x'::character varying); not 'a'::text || 'b'.
  if (!rest.empty() && rest.rfind("::", 0) != 0) return false;
  for (size_t k = 2; k < rest.size(); ++k) {
    char c = rest[k];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ' ' || c == '"' || c == '.')) return false;
  }
  value = v;
  return true;
}

const UniqueIndex* TableFacts::primary_key() const {
  for (const auto& u : unique)
    if (u.primary) return &u;
  return nullptr;
}

std::string unique_indexes_sql() {
  // One row per index column, key columns only (INCLUDE columns are not part of uniqueness).
  return "SELECT n.ord, ic.relname, i.indisprimary, u.k, a.attname "
         "FROM unnest($1::text[]) WITH ORDINALITY n(name, ord) "
         "JOIN pg_catalog.pg_index i ON i.indrelid = pg_catalog.to_regclass(n.name) AND i.indisunique "
         "     AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL "
         "JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
         "CROSS JOIN LATERAL generate_series(0, i.indnkeyatts - 1) AS u(k) "
         "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[u.k] "
         "ORDER BY n.ord, i.indisprimary DESC, ic.relname, u.k";
}

std::string foreign_keys_sql() {
  return "SELECT n.ord, k.conname, u.i, ca.attname, pn.nspname, pc.relname, pa.attname "
         "FROM unnest($1::text[]) WITH ORDINALITY n(name, ord) "
         "JOIN pg_catalog.pg_constraint k ON k.conrelid = pg_catalog.to_regclass(n.name) AND k.contype = 'f' "
         "CROSS JOIN LATERAL unnest(k.conkey, k.confkey) WITH ORDINALITY u(child, parent, i) "
         "JOIN pg_catalog.pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = u.child "
         "JOIN pg_catalog.pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = u.parent "
         "JOIN pg_catalog.pg_class pc ON pc.oid = k.confrelid "
         "JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace "
         "ORDER BY n.ord, k.conname, u.i";
}

std::string column_fills_sql() {
  return "SELECT n.ord, a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, "
         "       a.attgenerated::text "
         "FROM unnest($1::text[]) WITH ORDINALITY n(name, ord) "
         "JOIN pg_catalog.pg_attribute a ON a.attrelid = pg_catalog.to_regclass(n.name) AND a.attnum > 0 "
         "     AND NOT a.attisdropped "
         "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
         "WHERE d.oid IS NOT NULL OR a.attidentity <> '' OR a.attgenerated <> '' "
         "ORDER BY n.ord, a.attnum";
}

namespace {
TableFacts& facts_of(const pg::Result& r, int row, const std::vector<std::string>& names, Facts& out) {
  return out[names.at(static_cast<size_t>(r.int64(row, 0) - 1))];
}
}  // namespace

void unique_indexes_from(const pg::Result& r, const std::vector<std::string>& names, Facts& out) {
  for (const auto& n : names) out[n];
  for (int i = 0; i < r.rows(); ++i) {
    auto& idx = facts_of(r, i, names, out).unique;
    if (r.int64(i, 3) == 0) idx.push_back(UniqueIndex{r.text(i, 1), r.boolean(i, 2), {}});
    idx.back().columns.push_back(r.text(i, 4));
  }
}

void foreign_keys_from(const pg::Result& r, const std::vector<std::string>& names, Facts& out) {
  for (const auto& n : names) out[n];
  for (int i = 0; i < r.rows(); ++i) {
    auto& fks = facts_of(r, i, names, out).foreign_keys;
    if (r.int64(i, 2) == 1) {
      ForeignKey fk;
      fk.constraint = r.text(i, 1);
      fk.parent_schema = r.text(i, 4);
      fk.parent_table = r.text(i, 5);
      fks.push_back(std::move(fk));
    }
    fks.back().columns.push_back(r.text(i, 3));
    fks.back().parent_columns.push_back(r.text(i, 6));
  }
}

void column_fills_from(const pg::Result& r, const std::vector<std::string>& names, Facts& out) {
  for (const auto& n : names) out[n];
  for (int i = 0; i < r.rows(); ++i) {
    ColumnFill f;
    f.default_expr = r.is_null(i, 2) ? "" : r.text(i, 2);
    f.identity = r.get(i, 3).empty() ? 0 : r.get(i, 3)[0];
    f.computed = !r.get(i, 4).empty();
    facts_of(r, i, names, out).fills[r.text(i, 1)] = std::move(f);
  }
}

}  // namespace stagesync::catalog
