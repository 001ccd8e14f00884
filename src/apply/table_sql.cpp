#include "apply/table_sql.h"

#include <algorithm>

namespace stagesync::apply {

std::string TableSql::owned(const std::string& alias, pg::Params& params) const {
  std::vector<std::string> conds;
  if (t_.owner) conds.push_back(alias + "." + pg::ident(t_.owner->first) + " = " + params.add(t_.owner->second));
  for (const auto& [col, value] : t_.scope) conds.push_back(alias + "." + pg::ident(col) + " = " + params.add(value));
  return conds.empty() ? "true" : "(" + pg::join(conds, " AND ") + ")";
}

std::string TableSql::no_surviving_row(const std::string& alias, const std::string& match, pg::Params& params) const {
  std::string rows = "NOT EXISTS (SELECT 1 FROM " + target() + " " + alias + " WHERE " + match + " AND ";
  std::string not_owned = rows + owned(alias, params) + " IS NOT TRUE)";
  if (!incremental()) return not_owned;
  // A row survives when the sync does not own it, or its key is not on the
  // deletion list (which holds keys, and a key set aside as a collision is
  // there although the row holding it is not the sync's: only owned rows
  // are deleted).
  return "(" + not_owned + " AND " + rows + "NOT EXISTS (SELECT 1 FROM " + deletions_ + " d WHERE " +
         same_key("d", alias) + ")))";
}

std::string TableSql::same_key(const std::string& a, const std::string& b) const {
  std::vector<std::string> conds;
  for (const auto& k : t_.key) conds.push_back(a + "." + pg::ident(k) + " = " + b + "." + pg::ident(k));
  return pg::join(conds, " AND ");
}

std::string TableSql::staged_value(const std::string& alias, const plan::StagedColumn& c) const {
  std::string v = "CAST(" + alias + "." + pg::ident(c.name) + " AS " + c.target.type + ")";
  return c.target.comparable ? v : v + "::text";
}

std::string TableSql::target_value(const std::string& alias, const plan::StagedColumn& c) const {
  std::string v = alias + "." + pg::ident(c.name);
  return c.target.comparable ? v : v + "::text";
}

std::string TableSql::insert_value(const std::string& alias, const plan::StagedColumn& c) const {
  std::string v = alias + "." + pg::ident(c.name);
  // Staged as text because the target type is not a built-in one: convert explicitly.
  return c.stage_type == c.target.base_type ? v : "CAST(" + v + " AS " + c.target.type + ")";
}

std::string TableSql::constant(const plan::ColumnValue& kv, pg::Params& params) const {
  const catalog::Column* col = t_.target.find(kv.first);
  return "CAST(" + params.add(kv.second) + " AS " + (col ? col->type : std::string("text")) + ")";
}

bool TableSql::has_compared_values() const {
  if (!t_.constants.empty()) return true;
  for (const auto& c : t_.columns)
    if (c.compare) return true;
  return false;
}

bool TableSql::is_key(const plan::StagedColumn& c) const {
  return std::find(t_.key.begin(), t_.key.end(), c.name) != t_.key.end();
}

std::string TableSql::staged_tuple(const std::string& alias, pg::Params& params, bool with_key) const {
  std::vector<std::string> v;
  for (const auto& c : t_.columns)
    if (c.compare || (with_key && is_key(c))) v.push_back(staged_value(alias, c));
  for (const auto& kv : t_.constants) v.push_back(constant(kv, params));
  return "ROW(" + pg::join(v, ", ") + ")";
}

std::string TableSql::target_tuple(const std::string& alias, pg::Params& /*params*/, bool with_key) const {
  std::vector<std::string> v;
  for (const auto& c : t_.columns)
    if (c.compare || (with_key && is_key(c))) v.push_back(target_value(alias, c));
  for (const auto& kv : t_.constants) {
    const catalog::Column* col = t_.target.find(kv.first);
    std::string e = alias + "." + pg::ident(kv.first);
    v.push_back(col && !col->comparable ? e + "::text" : e);
  }
  return "ROW(" + pg::join(v, ", ") + ")";
}

std::string TableSql::key_json(const std::string& alias) const {
  if (t_.key.empty()) return "pg_catalog.left(pg_catalog.row_to_json(" + alias + ")::text, 500)";
  std::vector<std::string> parts;
  for (const auto& k : t_.key) parts.push_back(pg::text_literal(k) + ", " + alias + "." + pg::ident(k));
  return "pg_catalog.json_build_object(" + pg::join(parts, ", ") + ")::text";
}

std::string TableSql::key_from_json(const std::string& json, const std::string& column) const {
  const plan::StagedColumn* c = t_.column(column);
  return "CAST((" + json + "::json ->> " + pg::text_literal(column) + ") AS " + c->stage_type + ")";
}

std::string TableSql::key_ddl() const {
  std::vector<std::string> cols;
  for (const auto& k : t_.key) cols.push_back(pg::ident(k) + " " + t_.column(k)->stage_type);
  return pg::join(cols, ", ");
}

std::vector<std::string> TableSql::insert_columns() const {
  std::vector<std::string> cols;
  for (const auto& c : t_.columns) cols.push_back(c.name);
  if (t_.owner) cols.push_back(t_.owner->first);
  for (const auto& kv : t_.constants) cols.push_back(kv.first);
  return cols;
}

std::string TableSql::insert_select(pg::Params& params) const {
  std::vector<std::string> v;
  for (const auto& c : t_.columns) v.push_back(insert_value("s", c));
  if (t_.owner) v.push_back(constant(*t_.owner, params));
  for (const auto& kv : t_.constants) v.push_back(constant(kv, params));
  return pg::join(v, ", ");
}

}  // namespace stagesync::apply
