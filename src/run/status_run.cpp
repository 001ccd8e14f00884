#include "run/status_run.h"

#include "run/session.h"
#include "state/metadata.h"
#include "state/run_lock.h"

namespace stagesync::run {
namespace {

nlohmann::json value(const pg::Result& r, int row, int col) {
  if (r.is_null(row, col)) return nullptr;
  return r.text(row, col);
}

}  // namespace

nlohmann::json read_status(const config::Config& cfg, int recent_runs) {
  auto target = connect_side("target", target_endpoint(cfg));
  nlohmann::json s = {{"target", target->describe()}};
  int holder = state::RunLock::holder(*target, scope_key(cfg));
  s["run_in_progress"] = holder != 0;
  if (holder) s["lock_holder_pid"] = holder;
  if (!state::metadata_present(*target)) {
    s["metadata"] = "absent: no run has written to this target yet";
    s["runs"] = nlohmann::json::array();
    return s;
  }
  s["metadata"] = "version " + std::to_string(state::kMetadataVersion);
  pg::Result runs = target->exec(
      "SELECT run_id, command, mode, strategy, status, "
      "to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'), round(extract(epoch FROM finished_at - started_at)::numeric, 1)::text, "
      "array_to_string(tables, ','), error FROM stagesync.runs ORDER BY started_at DESC LIMIT $1",
      std::vector<pg::Param>{std::to_string(recent_runs)});
  s["runs"] = nlohmann::json::array();
  for (int i = 0; i < runs.rows(); ++i) {
    s["runs"].push_back({{"run_id", value(runs, i, 0)}, {"command", value(runs, i, 1)}, {"mode", value(runs, i, 2)},
                         {"strategy", value(runs, i, 3)}, {"status", value(runs, i, 4)},
                         {"started", value(runs, i, 5)}, {"seconds", value(runs, i, 6)},
                         {"tables", value(runs, i, 7)}, {"error", value(runs, i, 8)}});
  }
  s["tables"] = nlohmann::json::array();
  for (const auto& t : cfg.tables) {
    pg::Result r = target->exec(
        "SELECT to_char(st.last_success_at, 'YYYY-MM-DD HH24:MI:SS TZ'), "
        "round(extract(epoch FROM now() - st.last_success_at))::bigint::text, st.last_run_id, "
        "tr.rows_read::text, tr.inserted::text, tr.updated::text, tr.deleted::text, tr.rejected::text, "
        "tr.mode_used, st.watermark ->> 'xmin', st.watermark ->> 'xmax' "
        "FROM stagesync.table_state st LEFT JOIN stagesync.table_runs tr "
        "ON tr.run_id = st.last_run_id AND tr.table_name = st.table_name WHERE st.table_name = $1",
        std::vector<pg::Param>{t.target});
    nlohmann::json j = {{"table", t.target}, {"source", t.name}};
    if (r.rows()) {
      j["last_success"] = value(r, 0, 0);
      j["lag_seconds"] = value(r, 0, 1);
      j["last_run_id"] = value(r, 0, 2);
      j["last_counts"] = {{"read", value(r, 0, 3)}, {"inserted", value(r, 0, 4)}, {"updated", value(r, 0, 5)},
                          {"deleted", value(r, 0, 6)}, {"rejected", value(r, 0, 7)}};
      j["last_method"] = value(r, 0, 8);
      // The source snapshot the last run read in: the next incremental run reads
      // row versions from transactions at or above its xmin.
      j["watermark"] = {{"source_xmin", value(r, 0, 9)}, {"source_xmax", value(r, 0, 10)}};
    } else {
      j["last_success"] = nullptr;
    }
    s["tables"].push_back(j);
  }
  pg::Result left = target->exec(
      "SELECT relname FROM pg_catalog.pg_class WHERE relnamespace = 'stagesync'::regnamespace AND relkind = 'r' "
      "AND (relname LIKE 's\\_%' OR relname LIKE 'r\\_%') ORDER BY 1");
  s["staging_tables"] = nlohmann::json::array();
  for (int i = 0; i < left.rows(); ++i) s["staging_tables"].push_back(left.text(i, 0));
  pg::Result running = target->exec("SELECT count(*) FROM stagesync.runs WHERE status = 'running'");
  s["interrupted_runs"] = holder ? 0 : running.int64(0, 0);
  return s;
}

std::string render_status(const nlohmann::json& s) {
  auto str = [](const nlohmann::json& v) { return v.is_null() ? std::string("-") : v.get<std::string>(); };
  std::string out = "target " + s["target"].get<std::string>() + ": metadata " + s["metadata"].get<std::string>() + "\n";
  out += s["run_in_progress"].get<bool>() ? "a run is in progress (server process " +
                                                std::to_string(s["lock_holder_pid"].get<int>()) + ")\n"
                                          : "no run in progress\n";
  if (s.contains("interrupted_runs") && s["interrupted_runs"].get<int64_t>() > 0) {
    out += std::to_string(s["interrupted_runs"].get<int64_t>()) +
           " interrupted run(s) left records marked running; the next run marks them abandoned\n";
  }
  if (s.contains("staging_tables") && !s["staging_tables"].empty() && !s["run_in_progress"].get<bool>()) {
    out += "leftover staging tables (dropped by the next run):";
    for (const auto& t : s["staging_tables"]) out += " stagesync." + t.get<std::string>();
    out += "\n";
  }
  if (!s["runs"].empty()) {
    out += "\nrecent runs:\n";
    for (const auto& r : s["runs"]) {
      out += "  " + str(r["run_id"]) + "  " + str(r["command"]) + " " + str(r["mode"]) + " " + str(r["strategy"]) +
             "  " + str(r["status"]) + "  started " + str(r["started"]) + ", " + str(r["seconds"]) + " s";
      if (!r["error"].is_null()) out += "\n      " + str(r["error"]).substr(0, 300);
      out += "\n";
    }
  }
  if (s.contains("tables")) {
    out += "\ntables:\n";
    for (const auto& t : s["tables"]) {
      out += "  " + str(t["table"]) + ": ";
      if (t["last_success"].is_null()) {
        out += "never synced\n";
        continue;
      }
      const auto& c = t["last_counts"];
      out += "last success " + str(t["last_success"]) + " (" + str(t["lag_seconds"]) + " s ago), read " +
             str(c["read"]) + ", inserted " + str(c["inserted"]) + ", updated " + str(c["updated"]) + ", deleted " +
             str(c["deleted"]) + ", rejected " + str(c["rejected"]) + " (" + str(t["last_method"]) +
             "); watermark: source transactions from " + str(t["watermark"]["source_xmin"]) + "\n";
    }
  }
  return out;
}

}  // namespace stagesync::run
