// The local state of `stagesync run`: a small JSON file on the machine that
// runs the cycles (decision 0009). The target's run records say what reached
// the target; this file also knows what did not (a target that could not be
// reached, a broken configuration), the consecutive failures per direction,
// and when the next cycle is planned. `stagesync status` reads both.
//
// Written after every cycle by replacing the file (write, fsync, rename): a
// crash leaves the previous version or the new one, never half of one. A
// missing file is "no cycle has run here yet", not an error; one that cannot
// be read or parsed is reported and started afresh.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace stagesync::run {

struct DirectionState {
  std::string last_success;  // ISO 8601 UTC; empty: never
  std::string last_attempt;  // ISO 8601 UTC; empty: never
  std::string last_outcome;  // succeeded | failed | differences | skipped | interrupted
  std::string last_error;    // of the last failed attempt (kept until a success)
  int consecutive_failures = 0;
};

struct RunState {
  std::string host;
  int pid = 0;                                       // the `run` process (0: none running)
  int64_t every_seconds = 0;                         // its --every (0: --once)
  int64_t cycles = 0;                                // cycles this state file has seen
  std::string next_cycle;                            // ISO 8601 UTC; empty: none planned (--once, or stopped)
  std::string last_full;                             // start of the last full cycle that succeeded
  std::string stopped;                               // when the `run --every` process stopped (empty: running or never)
  int consecutive_failures = 0;                      // failed cycles in a row
  nlohmann::json last_cycle;                         // the last `cycle` object (docs/json.md), null before the first
  std::map<std::string, DirectionState> directions;  // "forward", "reverse"

  nlohmann::json to_json() const;
  static RunState from_json(const nlohmann::json& j);
};

// `<config without .yaml/.yml>.state.json`, next to the configuration file.
std::string default_state_path(const std::string& config_path);
// nullopt when there is no file; `problem` says why an existing one could not be used.
std::optional<RunState> load_run_state(const std::string& path, std::string& problem);
// Throws std::runtime_error naming the path and the reason.
void save_run_state(const std::string& path, const RunState& s);

}  // namespace stagesync::run
