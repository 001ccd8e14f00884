#include "backup/backup.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "pg/sql.h"

namespace stagesync::backup {
namespace {

std::string shape_of(pg::Connection& target, const std::string& table) {
  pg::Result r = target.exec(
      "SELECT string_agg(attname || ' ' || pg_catalog.format_type(atttypid, atttypmod), ', ' ORDER BY attnum) "
      "FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) AND attnum > 0 AND NOT attisdropped",
      std::vector<pg::Param>{table});
  return r.opt(0, 0).value_or("");
}

// The owned-and-in-scope condition, as recorded with the backup.
nlohmann::json owned_of(const config::Config& cfg, const config::Table& t) {
  nlohmann::json j = {{"owner", nullptr}, {"scope", nlohmann::json::array()}};
  const config::Owner& o = cfg.owner_of(t);
  if (!o.none) j["owner"] = {o.column, o.value};
  for (const auto& [col, value] : cfg.scope_of(t).equals) j["scope"].push_back({col, value});
  return j;
}

std::string owned_sql(const nlohmann::json& owned, pg::Params& params) {
  std::vector<std::string> conds;
  if (!owned["owner"].is_null()) {
    conds.push_back(pg::ident(owned["owner"][0].get<std::string>()) + " = " + params.add(owned["owner"][1].get<std::string>()));
  }
  for (const auto& kv : owned["scope"]) conds.push_back(pg::ident(kv[0].get<std::string>()) + " = " + params.add(kv[1].get<std::string>()));
  return conds.empty() ? "true" : pg::join(conds, " AND ");
}

}  // namespace

bool Backup::restorable() const {
  return std::all_of(tables.begin(), tables.end(), [](const TableCopy& t) { return t.shape_unchanged; });
}

std::vector<const config::Table*> tables_in_order(const config::Config& cfg, const std::vector<std::string>& only) {
  std::vector<const config::Table*> wanted;
  for (const auto& t : cfg.tables) {
    if (only.empty() || std::find(only.begin(), only.end(), t.name) != only.end() ||
        std::find(only.begin(), only.end(), t.target) != only.end())
      wanted.push_back(&t);
  }
  // Parents first: repeatedly place tables whose wanted parents are placed.
  std::vector<const config::Table*> ordered;
  std::set<std::string> placed;
  while (ordered.size() < wanted.size()) {
    bool progress = false;
    for (const auto* t : wanted) {
      if (placed.count(t->name)) continue;
      bool ready = std::all_of(t->references.begin(), t->references.end(), [&](const config::Reference& r) {
        bool parent_wanted = std::any_of(wanted.begin(), wanted.end(), [&](const config::Table* w) { return w->name == r.parent; });
        return r.parent == t->name || !parent_wanted || placed.count(r.parent);
      });
      if (ready) {
        ordered.push_back(t);
        placed.insert(t->name);
        progress = true;
      }
    }
    if (!progress) {  // a cycle: keep the configured order for the rest
      for (const auto* t : wanted)
        if (!placed.count(t->name)) ordered.push_back(t), placed.insert(t->name);
    }
  }
  return ordered;
}

std::string create(pg::Connection& target, const config::Config& cfg, const std::vector<const config::Table*>& tables,
                   const std::string& reason, const std::string& run_id) {
  target.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
  try {
    std::string id = target.exec(
        "SELECT 'bk' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS') || '_' || "
        "substr(md5(random()::text), 1, 6)").text(0, 0);
    target.exec("INSERT INTO stagesync.backups (backup_id, reason, run_id) VALUES ($1, $2, $3)",
                std::vector<pg::Param>{id, reason, run_id.empty() ? pg::Param() : pg::Param(run_id)});
    for (size_t i = 0; i < tables.size(); ++i) {
      const config::Table& t = *tables[i];
      std::string source = pg::dotted_name(t.target);
      std::string copy = "b_" + id + "_" + std::to_string(i);
      target.exec("CREATE TABLE " + pg::qualified("stagesync", copy) + " AS SELECT * FROM " + source + " WITH NO DATA");
      nlohmann::json owned = owned_of(cfg, t);
      pg::Params params;
      std::string where = owned_sql(owned, params);
      int64_t rows = target.exec("INSERT INTO " + pg::qualified("stagesync", copy) + " SELECT * FROM " + source +
                                     " WHERE " + where, params).affected();
      target.exec(
          "INSERT INTO stagesync.backup_tables (backup_id, ordinal, table_name, target_table, copy_table, shape, "
          "owned_predicate, rows) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
          std::vector<pg::Param>{id, std::to_string(i), t.target, source, copy, shape_of(target, source), owned.dump(),
                                 std::to_string(rows)});
    }
    target.exec("COMMIT");
    return id;
  } catch (...) {
    if (target.is_alive()) target.exec("ROLLBACK");
    throw;
  }
}

std::vector<Backup> list(pg::Connection& target, int limit) {
  // Backups taken before run_id was recorded name their run in the reason.
  pg::Result r = target.exec(
      "SELECT b.backup_id, to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), b.reason, "
      "coalesce(b.run_id, substring(b.reason FROM 'before truncate-first run (\\S+)$'), ''), t.table_name, "
      "t.copy_table, t.rows, t.shape = coalesce((SELECT string_agg(attname || ' ' || "
      "pg_catalog.format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute "
      "WHERE attrelid = pg_catalog.to_regclass(t.target_table) AND attnum > 0 AND NOT attisdropped), '') "
      "FROM (SELECT * FROM stagesync.backups ORDER BY created_at DESC, backup_id DESC LIMIT $1) b "
      "JOIN stagesync.backup_tables t USING (backup_id) ORDER BY b.created_at DESC, b.backup_id DESC, t.ordinal",
      std::vector<pg::Param>{limit < 0 ? pg::Param() : pg::Param(std::to_string(limit))});
  std::vector<Backup> out;
  for (int i = 0; i < r.rows(); ++i) {
    if (out.empty() || out.back().id != r.text(i, 0)) {
      out.push_back(Backup{r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), {}});
    }
    out.back().tables.push_back(TableCopy{r.text(i, 4), r.text(i, 5), r.int64(i, 6), r.boolean(i, 7)});
  }
  return out;
}

void restore(pg::Connection& target, const std::string& id) {
  pg::Result t = target.exec(
      "SELECT table_name, target_table, copy_table, shape, owned_predicate::text FROM stagesync.backup_tables "
      "WHERE backup_id = $1 ORDER BY ordinal",
      std::vector<pg::Param>{id});
  if (t.rows() == 0) throw BackupError("no backup '" + id + "' in the target (see `stagesync backup --list`)");
  target.exec("BEGIN");
  try {
    for (int i = 0; i < t.rows(); ++i) {
      std::string now = shape_of(target, t.text(i, 1));
      if (now != t.text(i, 3)) {
        throw BackupError("table " + t.text(i, 0) + " changed shape since backup " + id + " (was: " + t.text(i, 3) +
                          "; now: " + (now.empty() ? "missing" : now) + "); nothing was restored");
      }
    }
    // Triggers (and FK checks) off while rows are put back as they were, where the role may do so.
    target.exec("SAVEPOINT replica");
    try {
      target.exec("SET LOCAL session_replication_role = replica");
      target.exec("RELEASE SAVEPOINT replica");
    } catch (const pg::Error&) {
      target.exec("ROLLBACK TO SAVEPOINT replica");
    }
    for (int i = t.rows() - 1; i >= 0; --i) {
      pg::Params params;
      std::string where = owned_sql(nlohmann::json::parse(t.text(i, 4)), params);
      target.exec("DELETE FROM " + t.text(i, 1) + " WHERE " + where, params);
    }
    for (int i = 0; i < t.rows(); ++i) {
      pg::Result cols = target.exec(
          "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute "
          "WHERE attrelid = pg_catalog.to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
          std::vector<pg::Param>{t.text(i, 1)});
      std::string list = cols.text(0, 0);
      target.exec("INSERT INTO " + t.text(i, 1) + " (" + list + ") OVERRIDING SYSTEM VALUE SELECT " + list + " FROM " +
                  pg::qualified("stagesync", t.text(i, 2)));
    }
    target.exec("COMMIT");
  } catch (...) {
    if (target.is_alive()) target.exec("ROLLBACK");
    throw;
  }
}

int prune(pg::Connection& target, int keep) {
  pg::Result old = target.exec("SELECT backup_id FROM stagesync.backups ORDER BY created_at DESC OFFSET $1",
                               std::vector<pg::Param>{std::to_string(keep)});
  for (int i = 0; i < old.rows(); ++i) {
    target.exec("BEGIN");
    pg::Result copies = target.exec("SELECT copy_table FROM stagesync.backup_tables WHERE backup_id = $1",
                                    std::vector<pg::Param>{old.text(i, 0)});
    for (int k = 0; k < copies.rows(); ++k)
      target.exec("DROP TABLE IF EXISTS " + pg::qualified("stagesync", copies.text(k, 0)));
    target.exec("DELETE FROM stagesync.backups WHERE backup_id = $1", std::vector<pg::Param>{old.text(i, 0)});
    target.exec("COMMIT");
  }
  return old.rows();
}

}  // namespace stagesync::backup
