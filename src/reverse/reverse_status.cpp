#include "reverse/reverse_status.h"

namespace stagesync::reverse {

nlohmann::json reverse_status(pg::Connection& target, const config::Config& cfg) {
  nlohmann::json out = nlohmann::json::array();
  if (cfg.reverse.empty()) return out;
  bool present = target.exec("SELECT pg_catalog.to_regclass('stagesync.reverse_state') IS NOT NULL").boolean(0, 0);
  int64_t pending = 0;
  if (present)
    pending = target.exec("SELECT count(*) FROM stagesync.reverse_pending WHERE desktop_xid <> 0").int64(0, 0);
  for (const auto& r : cfg.reverse) {
    std::string id = r.name + " -> " + r.into;
    nlohmann::json j = {{"entry", id},
                        {"target", r.name},
                        {"desktop", r.into},
                        {"last_success", nullptr},
                        {"lag_seconds", nullptr},
                        {"last_run_id", nullptr},
                        {"copied_rows", nullptr},
                        {"watermark", nullptr},
                        {"pending_runs", pending}};
    if (present) {
      pg::Result s = target.exec(
          "SELECT to_char(last_success_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
          "round(extract(epoch FROM now() - last_success_at))::bigint, last_run_id, copied_rows, "
          "(watermark ->> 'xmin')::bigint, (watermark ->> 'xmax')::bigint FROM stagesync.reverse_state WHERE entry = "
          "$1",
          std::vector<pg::Param>{id});
      if (s.rows()) {
        j["last_success"] = s.text(0, 0);
        j["lag_seconds"] = s.int64(0, 1);
        j["last_run_id"] = s.text(0, 2);
        j["copied_rows"] = s.is_null(0, 3) ? nlohmann::json() : nlohmann::json(s.int64(0, 3));
        if (!s.is_null(0, 4)) j["watermark"] = {{"target_xmin", s.int64(0, 4)}, {"target_xmax", s.int64(0, 5)}};
      }
    }
    out.push_back(j);
  }
  return out;
}

std::string render_reverse_status(const nlohmann::json& status) {
  if (!status.contains("reverse") || status["reverse"].empty()) return "";
  std::string out = "\nreverse (target -> desktop):\n";
  for (const auto& e : status["reverse"]) {
    out += "  " + e["entry"].get<std::string>() + ": ";
    if (e["last_success"].is_null()) {
      out += "never run\n";
      continue;
    }
    out += "last success " + e["last_success"].get<std::string>() + " (" +
           std::to_string(e["lag_seconds"].get<int64_t>()) + " s ago), " +
           (e["copied_rows"].is_null() ? std::string("-") : std::to_string(e["copied_rows"].get<int64_t>())) +
           " rows copied so far";
    if (!e["watermark"].is_null()) {
      out += "; watermark: target transactions from " + std::to_string(e["watermark"]["target_xmin"].get<int64_t>());
    }
    out += "\n";
  }
  int64_t pending = status["reverse"].front()["pending_runs"].get<int64_t>();
  if (pending > 0) {
    out += "  " + std::to_string(pending) + " interrupted reverse run(s) pending: the next reverse run resolves them\n";
  }
  return out;
}

}  // namespace stagesync::reverse
