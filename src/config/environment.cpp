// What a configuration needs from the process environment, checked before any
// connection is opened.
#include <cstdlib>

#include "config/config.h"

namespace stagesync::config {

void check_environment(const Config& cfg) {
  std::vector<std::string> problems;
  auto need = [&](const Endpoint& e, const char* side) {
    if (e.password_env.empty() || std::getenv(e.password_env.c_str())) return;
    std::string where = e.password_env_at.line > 0 ? e.password_env_at.str() + ": " : std::string();
    problems.push_back(where + "the " + side + "'s password_env names the environment variable " + e.password_env +
                       ", which is not set; set it before running stagesync (or remove " +
                       "password_env to let libpq use PGPASSWORD or ~/.pgpass)");
  };
  need(cfg.source, "source");
  need(cfg.target, "target");
  if (!problems.empty()) throw ConfigError(std::move(problems));
}

}  // namespace stagesync::config
