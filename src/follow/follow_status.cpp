#include "follow/follow_status.h"

#include "logical/readiness.h"
#include "run/session.h"
#include "state/follow_state.h"

namespace stagesync::follow {

nlohmann::json follow_status(pg::Connection& target, const config::Config& cfg) {
  nlohmann::json out = nlohmann::json::array();
  std::vector<state::FollowState> states = state::read_follow_states(target);
  if (states.empty()) return out;
  std::unique_ptr<pg::Connection> desktop;
  std::string desktop_error;
  try {
    desktop = run::connect_side("source", run::source_endpoint(cfg), false);
  } catch (const std::exception& e) {
    desktop_error = e.what();
  }
  for (const auto& s : states) {
    nlohmann::json f = {{"slot", s.slot_name},
                        {"confirmed_lsn", s.confirmed_lsn},
                        {"last_batch_run_id", s.last_run_id.empty() ? nlohmann::json() : nlohmann::json(s.last_run_id)},
                        {"last_batch_at", s.updated_at},
                        {"seconds_since_last_batch", s.lag_seconds},
                        {"batches", s.batches},
                        {"slot_exists", nullptr},
                        {"slot_active", nullptr},
                        {"retained_wal_bytes", nullptr},
                        {"wal_status", nullptr},
                        {"lag_bytes", nullptr},
                        {"desktop_error", desktop_error.empty() ? nlohmann::json() : nlohmann::json(desktop_error)}};
    if (desktop) {
      try {
        logical::SlotStatus st = logical::slot_status(*desktop, s.slot_name);
        f["slot_exists"] = st.exists;
        if (st.exists) {
          f["slot_active"] = st.active;
          f["retained_wal_bytes"] = st.retained_bytes;
          f["wal_status"] = st.wal_status;
        }
        // WAL written on the desktop since the target's confirmed position
        // (0 when nothing was written; other databases' writes count too).
        f["lag_bytes"] = desktop
                             ->exec("SELECT greatest(pg_current_wal_insert_lsn() - $1::pg_lsn, 0)::bigint",
                                    std::vector<pg::Param>{s.confirmed_lsn})
                             .int64(0, 0);
      } catch (const std::exception& e) {
        f["desktop_error"] = e.what();
      }
    }
    out.push_back(f);
  }
  return out;
}

std::string render_followers(const nlohmann::json& followers) {
  if (!followers.is_array() || followers.empty()) return "";
  auto str = [](const nlohmann::json& v) {
    return v.is_null() ? std::string("-") : v.is_string() ? v.get<std::string>() : v.dump();
  };
  std::string out = "\nfollowers (stagesync follow):\n";
  for (const auto& f : followers) {
    out += "  slot " + str(f["slot"]) + ": confirmed " + str(f["confirmed_lsn"]) + ", " + str(f["batches"]) +
           " batch(es), last batch " + str(f["last_batch_at"]);
    if (f["slot_exists"] == false) {
      out += "; SLOT MISSING on the desktop (the next follow takes a full sync)";
    } else if (!f["slot_exists"].is_null()) {
      out += "; retained WAL " + str(f["retained_wal_bytes"]) + " bytes (" + str(f["wal_status"]) + "), " +
             (f["slot_active"] == true ? "streaming" : "not streaming") + ", behind the desktop by " +
             str(f["lag_bytes"]) + " bytes of WAL";
    }
    if (!f["desktop_error"].is_null()) out += "; desktop: " + str(f["desktop_error"]);
    out += "\n";
  }
  return out;
}

}  // namespace stagesync::follow
