// Health for monitoring: per direction (forward, reverse) the last success,
// the last attempt and its outcome, consecutive failures; the schedule of a
// `run --every` process; and, given limits, one verdict: healthy, behind or
// failing (`stagesync status --max-lag D`, decision 0009).
//
// Facts come from two places: the target's run records (what reached the
// target, visible from any machine) and the local run state of `stagesync
// run` (run/run_state.h: also what never reached the target). Lag is per
// table, from the target: see read_status().
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "config/config.h"
#include "run/run_state.h"
#include "schedule/duration.h"

namespace stagesync::run {

struct HealthLimits {
  schedule::Duration max_lag{0};  // a table whose lag exceeds it (or that never synced) is behind
  int max_failures = 1;           // this many consecutive failed attempts of a direction is failing
};

// Adds `directions` and `schedule` to a status document (read_status(), or one
// holding only `target_error` when the target could not be reached).
void add_run_health(nlohmann::json& status, const config::Config& cfg, const std::optional<RunState>& local,
                    const std::string& state_path);
// Adds `health` and returns its verdict: "healthy", "behind" or "failing"
// (failing wins: it says why a table is behind).
std::string judge_health(nlohmann::json& status, const HealthLimits& limits);

}  // namespace stagesync::run
