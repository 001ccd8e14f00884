#include "run/run_state.h"

#include "config/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace stagesync::run {
namespace {

nlohmann::json text(const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); }
std::string text(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}
int64_t integer(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number_integer() ? j[key].get<int64_t>() : 0;
}

}  // namespace

nlohmann::json RunState::to_json() const {
  nlohmann::json d = nlohmann::json::object();
  for (const auto& [name, s] : directions) {
    d[name] = {{"last_success", text(s.last_success)},
               {"last_attempt", text(s.last_attempt)},
               {"last_outcome", text(s.last_outcome)},
               {"last_error", text(s.last_error)},
               {"consecutive_failures", s.consecutive_failures}};
  }
  return {{"format", 1},
          {"host", text(host)},
          {"pid", pid ? nlohmann::json(pid) : nlohmann::json()},
          {"every_seconds", every_seconds ? nlohmann::json(every_seconds) : nlohmann::json()},
          {"cycles", cycles},
          {"next_cycle", text(next_cycle)},
          {"last_full", text(last_full)},
          {"stopped", text(stopped)},
          {"consecutive_failures", consecutive_failures},
          {"last_cycle", last_cycle},
          {"directions", d}};
}

RunState RunState::from_json(const nlohmann::json& j) {
  RunState s;
  s.host = text(j, "host");
  s.pid = static_cast<int>(integer(j, "pid"));
  s.every_seconds = integer(j, "every_seconds");
  s.cycles = integer(j, "cycles");
  s.next_cycle = text(j, "next_cycle");
  s.last_full = text(j, "last_full");
  s.stopped = text(j, "stopped");
  s.consecutive_failures = static_cast<int>(integer(j, "consecutive_failures"));
  if (j.contains("last_cycle")) s.last_cycle = j["last_cycle"];
  if (j.contains("directions") && j["directions"].is_object()) {
    for (const auto& [name, d] : j["directions"].items()) {
      DirectionState ds;
      ds.last_success = text(d, "last_success");
      ds.last_attempt = text(d, "last_attempt");
      ds.last_outcome = text(d, "last_outcome");
      ds.last_error = text(d, "last_error");
      ds.consecutive_failures = static_cast<int>(integer(d, "consecutive_failures"));
      s.directions[name] = ds;
    }
  }
  return s;
}

std::string default_state_path(const std::string& config_path) { return config::beside(config_path, ".state.json"); }

std::optional<RunState> load_run_state(const std::string& path, std::string& problem) {
  if (access(path.c_str(), F_OK) != 0) return std::nullopt;  // no cycle has run here yet
  std::ifstream in(path);
  if (!in) {
    problem = path + ": cannot read the run state (" + std::strerror(errno) + ")";
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    nlohmann::json j = nlohmann::json::parse(ss.str());
    if (!j.is_object()) throw std::runtime_error("not an object");
    return RunState::from_json(j);
  } catch (const std::exception& e) {
    problem = path + ": the run state is damaged (" + e.what() + "); starting afresh";
    return std::nullopt;
  }
}

void save_run_state(const std::string& path, const RunState& s) {
  std::string tmp = path + ".tmp";
  std::string data = s.to_json().dump(2) + "\n";
  auto fail = [&](const char* what) {
    std::string why = std::strerror(errno);
    unlink(tmp.c_str());
    throw std::runtime_error("cannot write the run state " + path + " (" + what + ": " + why + ")");
  };
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open");
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      fail("write");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    close(fd);
    fail("fsync");
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
}

}  // namespace stagesync::run
