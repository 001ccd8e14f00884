#include "run/status_run.h"

#include "reverse/reverse_status.h"
#include "report/reporter.h"
#include "run/session.h"
#include "state/metadata.h"
#include "state/run_lock.h"

namespace stagesync::run {
namespace {

// Timestamps in the status are ISO 8601 in UTC (docs/json.md).
std::string iso(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')";
}

nlohmann::json text(const pg::Result& r, int row, int col) {
  if (r.is_null(row, col)) return nullptr;
  return r.text(row, col);
}

// An integer column; null when the server has none (or, for values read from
// JSON such as a watermark, something that is not an integer).
nlohmann::json integer(const pg::Result& r, int row, int col) {
  if (r.is_null(row, col)) return nullptr;
  std::string v(r.text(row, col));
  size_t used = 0;
  try {
    long long n = std::stoll(v, &used);
    if (used == v.size()) return static_cast<int64_t>(n);
  } catch (const std::exception&) {
    // not an integer: unknown
  }
  return nullptr;
}

// A duration the server rounded (numeric as text, "12.3"; the process never sets a locale).
nlohmann::json number(const pg::Result& r, int row, int col) {
  if (r.is_null(row, col)) return nullptr;
  return std::stod(r.text(row, col));
}

// A configured table's entry; every field but the names null until its first successful run.
nlohmann::json never_synced(const config::Table& t) {
  return {{"table", t.target},      {"source", t.name},       {"last_success", nullptr}, {"lag_seconds", nullptr},
          {"last_run_id", nullptr}, {"last_counts", nullptr}, {"last_method", nullptr},  {"watermark", nullptr}};
}

}  // namespace

nlohmann::json backup_json(const backup::Backup& b) {
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& t : b.tables) {
    tables.push_back({{"table", t.table}, {"rows", t.rows}, {"shape_unchanged", t.shape_unchanged}});
  }
  return {{"backup_id", b.id},
          {"created_at", b.created_at},
          {"reason", b.reason},
          {"run_id", b.run_id.empty() ? nlohmann::json() : nlohmann::json(b.run_id)},
          {"restorable", b.restorable()},
          {"tables", tables}};
}

nlohmann::json read_status(const config::Config& cfg, int recent_runs) {
  auto target = connect_side("target", target_endpoint(cfg));
  nlohmann::json s = {{"target", target->describe()}};
  int holder = state::RunLock::holder(*target, scope_key(cfg));
  s["run_in_progress"] = holder != 0;
  s["lock_holder_pid"] = holder ? nlohmann::json(holder) : nlohmann::json();
  s["runs"] = nlohmann::json::array();
  s["backups"] = nlohmann::json::array();
  s["staging_tables"] = nlohmann::json::array();
  s["interrupted_runs"] = 0;
  s["tables"] = nlohmann::json::array();
  if (!state::metadata_present(*target)) {
    s["metadata"] = "absent: no run has written to this target yet";
    s["metadata_version"] = nullptr;
    for (const auto& t : cfg.tables) s["tables"].push_back(never_synced(t));
    s["reverse"] = reverse::reverse_status(*target, cfg);
    return s;
  }
  s["metadata"] = "version " + std::to_string(state::kMetadataVersion);
  s["metadata_version"] = state::kMetadataVersion;
  pg::Result runs = target->exec(
      "SELECT run_id, command, NULLIF(mode, ''), NULLIF(strategy, ''), status, " + iso("started_at") + ", " +
          iso("finished_at") +
          ", round(extract(epoch FROM finished_at - started_at)::numeric, 1)::text, array_to_json(tables)::text, error "
          "FROM stagesync.runs ORDER BY started_at DESC LIMIT $1",
      std::vector<pg::Param>{std::to_string(recent_runs)});
  for (int i = 0; i < runs.rows(); ++i) {
    nlohmann::json tables = runs.is_null(i, 8) ? nlohmann::json::array() : nlohmann::json::parse(runs.text(i, 8));
    s["runs"].push_back({{"run_id", text(runs, i, 0)},
                         {"command", text(runs, i, 1)},
                         {"mode", text(runs, i, 2)},
                         {"strategy", text(runs, i, 3)},
                         {"status", text(runs, i, 4)},
                         {"started", text(runs, i, 5)},
                         {"finished", text(runs, i, 6)},
                         {"seconds", number(runs, i, 7)},
                         {"tables", tables},
                         {"error", text(runs, i, 9)}});
  }
  for (const auto& b : backup::list(*target, recent_runs)) s["backups"].push_back(backup_json(b));
  for (const auto& t : cfg.tables) {
    // Lag: since the start of the last successful run. Its source snapshot was
    // taken after that start, so the target holds every source change older
    // than this (decision 0009: what lag can honestly mean with xid watermarks).
    pg::Result r =
        target->exec("SELECT " + iso("st.last_success_at") +
                         ", round(extract(epoch FROM now() - coalesce(lr.started_at, st.last_success_at)))::bigint, "
                         "st.last_run_id, tr.rows_read, tr.inserted, tr.updated, tr.deleted, tr.rejected, "
                         "tr.mode_used, st.watermark ->> 'xmin', st.watermark ->> 'xmax' "
                         "FROM stagesync.table_state st LEFT JOIN stagesync.table_runs tr "
                         "ON tr.run_id = st.last_run_id AND tr.table_name = st.table_name "
                         "LEFT JOIN stagesync.runs lr ON lr.run_id = st.last_run_id WHERE st.table_name = $1",
                     std::vector<pg::Param>{t.target});
    nlohmann::json j = never_synced(t);
    if (r.rows()) {
      j["last_success"] = text(r, 0, 0);
      j["lag_seconds"] = integer(r, 0, 1);
      j["last_run_id"] = text(r, 0, 2);
      j["last_counts"] = {{"read", integer(r, 0, 3)},
                          {"inserted", integer(r, 0, 4)},
                          {"updated", integer(r, 0, 5)},
                          {"deleted", integer(r, 0, 6)},
                          {"rejected", integer(r, 0, 7)}};
      j["last_method"] = text(r, 0, 8);
      // The source snapshot the last run read in: the next incremental run reads
      // row versions from transactions at or above its xmin.
      if (!r.is_null(0, 9)) j["watermark"] = {{"source_xmin", integer(r, 0, 9)}, {"source_xmax", integer(r, 0, 10)}};
    }
    s["tables"].push_back(j);
  }
  // Each direction as its runs recorded it (run/health.cpp merges the local run state): forward is
  // `sync`, reverse is `reverse` (command names of stagesync.runs).
  std::vector<std::pair<std::string, std::string>> directions = {{"forward", "sync"}};
  if (!cfg.reverse.empty()) directions.push_back({"reverse", "reverse"});
  for (const auto& [direction, command] : directions) {
    pg::Result d = target->exec(
        "WITH s AS (SELECT * FROM stagesync.runs WHERE command = $1), "
        "ok AS (SELECT max(started_at) AS started, max(finished_at) AS finished FROM s WHERE status = 'succeeded'), "
        "last AS (SELECT * FROM s ORDER BY started_at DESC LIMIT 1) "
        "SELECT " + iso("ok.finished") + ", " + iso("last.started_at") + ", last.status, last.error, "
        "(SELECT count(*) FROM s WHERE s.status IN ('failed', 'abandoned') AND s.started_at > "
        "coalesce(ok.started, '-infinity')) FROM ok LEFT JOIN last ON true",
        std::vector<pg::Param>{command});
    s[direction + "_records"] = {{"last_success", text(d, 0, 0)},
                                 {"last_attempt", text(d, 0, 1)},
                                 {"last_outcome", text(d, 0, 2)},
                                 {"last_error", text(d, 0, 3)},
                                 {"consecutive_failures", d.int64(0, 4)}};
  }
  pg::Result left = target->exec(
      "SELECT relname FROM pg_catalog.pg_class WHERE relnamespace = 'stagesync'::regnamespace AND relkind = 'r' "
      "AND (relname LIKE 's\\_%' OR relname LIKE 'r\\_%') ORDER BY 1");
  for (int i = 0; i < left.rows(); ++i) s["staging_tables"].push_back(left.text(i, 0));
  pg::Result running = target->exec("SELECT count(*) FROM stagesync.runs WHERE status = 'running'");
  s["interrupted_runs"] = holder ? 0 : running.int64(0, 0);
  s["reverse"] = reverse::reverse_status(*target, cfg);
  return s;
}

namespace {

// The target's part of the status (render_status()).
template <typename Str, typename When>
std::string render_target(const nlohmann::json& s, const Str& str, const When& when) {
  std::string out =
      "target " + s["target"].get<std::string>() + ": metadata " + s["metadata"].get<std::string>() + "\n";
  out += s["run_in_progress"].get<bool>() ? "a run is in progress (server process " + str(s["lock_holder_pid"]) + ")\n"
                                          : "no run in progress\n";
  if (s["interrupted_runs"].get<int64_t>() > 0) {
    out += std::to_string(s["interrupted_runs"].get<int64_t>()) +
           " interrupted run(s) left records marked running; the next run marks them abandoned\n";
  }
  if (!s["staging_tables"].empty() && !s["run_in_progress"].get<bool>()) {
    out += "leftover staging tables (dropped by the next run):";
    for (const auto& t : s["staging_tables"]) out += " stagesync." + t.get<std::string>();
    out += "\n";
  }
  if (!s["runs"].empty()) {
    out += "\nrecent runs:\n";
    for (const auto& r : s["runs"]) {
      out += "  " + str(r["run_id"]) + "  " + str(r["command"]) + " " + str(r["mode"]) + " " + str(r["strategy"]) +
             "  " + str(r["status"]) + "  started " + when(r["started"]) + ", " + str(r["seconds"]) + " s";
      if (!r["error"].is_null()) out += "\n      " + str(r["error"]).substr(0, 300);
      out += "\n";
    }
  }
  if (!s["backups"].empty()) {
    out += "\nrecent backups (restore with: stagesync restore --config FILE --backup ID):\n";
    for (const auto& b : s["backups"]) {
      out += "  " + str(b["backup_id"]) + "  " + when(b["created_at"]) + "  " +
             (b["run_id"].is_null() ? std::string("taken by `stagesync backup`") : "taken by run " + str(b["run_id"])) +
             (b["restorable"].get<bool>() ? "" : "  NOT RESTORABLE (a table changed shape since)") + "\n     ";
      for (const auto& t : b["tables"]) {
        out += " " + str(t["table"]) + " (" + report::thousands(t["rows"].get<int64_t>()) + " rows)";
      }
      out += "\n";
    }
  }
  out += "\ntables:\n";
  for (const auto& t : s["tables"]) {
    out += "  " + str(t["table"]) + ": ";
    if (t["last_success"].is_null()) {
      out += "never synced\n";
      continue;
    }
    const auto& c = t["last_counts"];
    out += "last success " + when(t["last_success"]) + " (lag " + str(t["lag_seconds"]) + " s), read " +
           str(c["read"]) + ", inserted " + str(c["inserted"]) + ", updated " + str(c["updated"]) + ", deleted " +
           str(c["deleted"]) + ", rejected " + str(c["rejected"]) + " (" + str(t["last_method"]) + ")";
    // A SQLite source has no transaction ids (xmin 0): its changes are found by row fingerprints.
    if (!t["watermark"].is_null() && str(t["watermark"]["source_xmin"]) != "0") {
      out += "; watermark: source transactions from " + str(t["watermark"]["source_xmin"]);
    }
    out += "\n";
  }
  out += reverse::render_reverse_status(s);
  return out;
}

}  // namespace

std::string render_status(const nlohmann::json& s) {
  auto str = [](const nlohmann::json& v) {
    if (v.is_null()) return std::string("-");
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  // ISO 8601 UTC as people read it.
  auto when = [&](const nlohmann::json& v) {
    std::string t = str(v);
    if (t.size() == 20 && t[10] == 'T' && t.back() == 'Z') t = t.substr(0, 10) + " " + t.substr(11, 8) + " UTC";
    return t;
  };
  std::string out;
  if (s.contains("target_error")) {
    out = "target: " + str(s["target_error"]) + "\n";
  } else {
    out = render_target(s, str, when);
  }
  if (s.contains("directions")) {
    out += "\ndirections:\n";
    for (const auto& [name, d] : s["directions"].items()) {
      out += "  " + name + ": last success " + when(d["last_success"]) + ", last attempt " + when(d["last_attempt"]) +
             " (" + str(d["last_outcome"]) + "), " + str(d["consecutive_failures"]) + " failure(s) in a row";
      if (!d["last_error"].is_null()) out += "\n      last error: " + str(d["last_error"]).substr(0, 300);
      out += "\n";
    }
  }
  if (s.contains("schedule")) {
    const auto& c = s["schedule"];
    out += "\nstagesync run (local state " + str(c["state_file"]) + "): ";
    if (c.contains("problem") && !c["problem"].is_null()) out += str(c["problem"]) + "; ";
    if (c["last_cycle"].is_null()) {
      out += "no cycle recorded\n";
    } else {
      out += c["running"] == true    ? "running as process " + str(c["pid"]) + ", next cycle " + when(c["next_cycle"])
             : c["running"].is_null() ? "last seen on " + str(c["host"]) + ", next cycle " + when(c["next_cycle"])
                                      : std::string("not running") +
                                            (c["stopped"].is_null() ? "" : " (stopped " + when(c["stopped"]) + ")");
      const auto& l = c["last_cycle"];
      out += "; last cycle " + when(l["started"]) + " " + str(l["outcome"]) + "\n";
    }
  }
  if (s.contains("health")) {
    const auto& h = s["health"];
    out += "\nhealth: " + str(h["verdict"]) + " (max lag " + str(h["max_lag_seconds"]) + " s, max failures " +
           str(h["max_failures"]) + ")\n";
    for (const auto& r : h["reasons"]) out += "  " + str(r) + "\n";
  }
  return out;
}

}  // namespace stagesync::run
