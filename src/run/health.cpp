#include "run/health.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include "schedule/clock.h"

namespace stagesync::run {
namespace {

nlohmann::json text_or_null(const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); }
std::string str(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// Whether the `run` process of the local state is alive (null: it runs on another machine).
nlohmann::json process_alive(const RunState& s) {
  if (!s.pid || !s.stopped.empty()) return false;
  if (s.host != hostname()) return nullptr;
  return kill(s.pid, 0) == 0 || errno == EPERM;
}

// When the local state's last cycle ended (ISO), to tell whether a target record is newer.
std::string last_cycle_end(const RunState& s) {
  auto start = schedule::parse_iso_utc(str(s.last_cycle, "started"));
  if (!start || !s.last_cycle.contains("seconds") || !s.last_cycle["seconds"].is_number()) return "";
  auto secs = static_cast<int64_t>(s.last_cycle["seconds"].get<double>()) + 1;
  return schedule::iso_utc(*start + std::chrono::seconds(secs));
}

}  // namespace

void add_run_health(nlohmann::json& status, const config::Config& cfg, const std::optional<RunState>& local,
                    const std::string& state_path) {
  nlohmann::json dirs = nlohmann::json::object();
  std::vector<std::string> names = {"forward"};
  if (!cfg.reverse.empty()) names.push_back("reverse");
  for (const auto& name : names) {
    // From the target's records (read_status(): `forward_records`), then the local state where it knows more.
    nlohmann::json t = status.contains(name + "_records") ? status[name + "_records"] : nlohmann::json::object();
    nlohmann::json d = {{"last_success", text_or_null(str(t, "last_success"))},
                        {"last_attempt", text_or_null(str(t, "last_attempt"))},
                        {"last_outcome", text_or_null(str(t, "last_outcome"))},
                        {"last_error", text_or_null(str(t, "last_error"))},
                        {"consecutive_failures", t.value("consecutive_failures", 0)},
                        {"from", "target"}};
    auto it = local ? local->directions.find(name) : std::map<std::string, DirectionState>::const_iterator();
    if (local && it != local->directions.end()) {
      const DirectionState& l = it->second;
      if (l.last_success > str(d, "last_success")) d["last_success"] = l.last_success;
      // The local state saw every attempt of `run` (also those that never reached the target); a
      // target record newer than its last cycle is a run started by hand since, and wins.
      if (str(t, "last_attempt").empty() || str(t, "last_attempt") <= last_cycle_end(*local)) {
        d["last_attempt"] = text_or_null(l.last_attempt);
        d["last_outcome"] = text_or_null(l.last_outcome);
        d["last_error"] = text_or_null(l.last_error);
        d["consecutive_failures"] = l.consecutive_failures;
        d["from"] = "local run state";
      }
    }
    dirs[name] = d;
  }
  status["directions"] = dirs;
  for (const auto& name : names) status.erase(name + "_records");

  nlohmann::json sch = {{"state_file", state_path}, {"running", false},         {"pid", nullptr},
                        {"host", nullptr},          {"every_seconds", nullptr}, {"next_cycle", nullptr},
                        {"stopped", nullptr},       {"last_cycle", nullptr}};
  if (local) {
    sch["running"] = process_alive(*local);
    sch["pid"] = local->pid ? nlohmann::json(local->pid) : nlohmann::json();
    sch["host"] = text_or_null(local->host);
    sch["every_seconds"] = local->every_seconds ? nlohmann::json(local->every_seconds) : nlohmann::json();
    // A planned cycle only while its process lives (or may live, on another machine).
    if (sch["running"] != false) sch["next_cycle"] = text_or_null(local->next_cycle);
    sch["stopped"] = text_or_null(local->stopped);
    sch["last_cycle"] = local->last_cycle;
  }
  status["schedule"] = sch;
}

std::string judge_health(nlohmann::json& status, const HealthLimits& limits) {
  std::vector<std::string> failing, behind;
  if (status.contains("target_error")) failing.push_back(status["target_error"].get<std::string>());
  for (const auto& [name, d] : status["directions"].items()) {
    int n = d["consecutive_failures"].get<int>();
    if (n >= limits.max_failures) {
      failing.push_back(name + ": " + std::to_string(n) + " failed attempt(s) in a row" +
                        (d["last_error"].is_null() ? "" : "; last error: " + d["last_error"].get<std::string>()));
    }
  }
  int64_t max_lag = limits.max_lag.count() / 1000;
  for (const auto& t : status["tables"]) {
    if (t["lag_seconds"].is_null()) {
      behind.push_back(t["table"].get<std::string>() + ": never synced");
    } else if (t["lag_seconds"].get<int64_t>() > max_lag) {
      behind.push_back(t["table"].get<std::string>() + ": " + std::to_string(t["lag_seconds"].get<int64_t>()) +
                       " s behind (limit " + std::to_string(max_lag) + " s)");
    }
  }
  std::string verdict = !failing.empty() ? "failing" : !behind.empty() ? "behind" : "healthy";
  nlohmann::json reasons = failing;
  for (const auto& b : behind) reasons.push_back(b);
  status["health"] = {
      {"verdict", verdict}, {"max_lag_seconds", max_lag}, {"max_failures", limits.max_failures}, {"reasons", reasons}};
  return verdict;
}

}  // namespace stagesync::run
