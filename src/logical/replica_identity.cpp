#include "logical/replica_identity.h"

#include <nlohmann/json.hpp>

namespace stagesync::logical {
namespace {

// The key columns: the primary key's under the default identity, the chosen
// index's under USING INDEX.
constexpr const char* kIdentitySql = R"(
SELECT n.nspname, c.relname, c.relreplident::text,
       (SELECT array_to_json(array_agg(a.attname ORDER BY k.ord))::text
          FROM pg_index i
          CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
         WHERE i.indrelid = c.oid
           AND ((c.relreplident = 'd' AND i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident)))
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(schema_name, table_name, ord)
JOIN pg_namespace n ON n.nspname = t.schema_name
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
ORDER BY t.ord)";

}  // namespace

std::string TableIdentity::describe() const {
  std::string name = relation.schema + "." + relation.name;
  std::string keys;
  for (const auto& k : key_columns) keys += (keys.empty() ? "" : ", ") + k;
  switch (old_row) {
    case OldRow::primary_key:
      return name + ": updates and deletes carry the primary key (" + keys + ")";
    case OldRow::index:
      return name + ": updates and deletes carry the replica identity index's columns (" + keys + ")";
    case OldRow::full_row:
      return name + ": updates and deletes carry the whole old row (REPLICA IDENTITY FULL)";
    case OldRow::none:
      break;
  }
  return name +
         ": updates and deletes carry no old key (no primary key, no replica identity): a batch with one reconciles "
         "this table's keys by digests; `follow: { replica_identity: full }` would run `" +
         opt_in_ddl() + "` (no rewrite; more WAL per update and delete)";
}

std::string TableIdentity::opt_in_ddl() const {
  if (old_row != OldRow::none) return {};
  return "ALTER TABLE " + pg::qualified(relation.schema, relation.name) + " REPLICA IDENTITY FULL";
}

std::vector<TableIdentity> read_identities(pg::Connection& conn, const std::vector<Relation>& tables) {
  std::vector<std::string> schemas, names;
  for (const auto& t : tables) {
    schemas.push_back(t.schema);
    names.push_back(t.name);
  }
  pg::Result r = conn.exec(kIdentitySql, std::vector<pg::Param>{pg::text_array(schemas), pg::text_array(names)});
  std::vector<TableIdentity> out;
  for (int i = 0; i < r.rows(); ++i) {
    TableIdentity t;
    t.relation = Relation{r.text(i, 0), r.text(i, 1)};
    t.replident = r.get(i, 2).empty() ? 'd' : r.get(i, 2)[0];
    if (!r.is_null(i, 3))
      for (const auto& k : nlohmann::json::parse(r.get(i, 3))) t.key_columns.push_back(k.get<std::string>());
    if (t.replident == 'f')
      t.old_row = OldRow::full_row;
    else if (t.key_columns.empty())
      t.old_row = OldRow::none;  // default without a primary key, or NOTHING
    else
      t.old_row = t.replident == 'i' ? OldRow::index : OldRow::primary_key;
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<Relation> set_replica_identity_full(pg::Connection& conn, const std::vector<TableIdentity>& tables,
                                                int lock_timeout_ms) {
  std::string sql = "BEGIN;\nSET LOCAL lock_timeout = " + std::to_string(lock_timeout_ms) + ";\n";
  std::vector<Relation> changed;
  for (const auto& t : tables) {
    std::string ddl = t.opt_in_ddl();
    if (ddl.empty()) continue;
    sql += ddl + ";\n";
    changed.push_back(t.relation);
  }
  if (changed.empty()) return changed;
  try {
    conn.exec(sql + "COMMIT");
  } catch (const pg::Error&) {
    // The failed transaction is still open on the connection: end it, best
    // effort (a lost connection has ended it already), and report the error.
    try {
      conn.exec("ROLLBACK");
    } catch (const pg::Error&) {
    }
    throw;
  }
  return changed;
}

}  // namespace stagesync::logical
