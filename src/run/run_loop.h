// `stagesync run`: cycles (run/cycle.h) once, or on a fixed cadence until
// SIGINT/SIGTERM (schedule/cadence.h), with what unattended operation needs
// around them: the configuration file read again before every cycle (a broken
// edit keeps the last good configuration running, and says so), a full sync
// and verify every --full-every, capped exponential backoff after failures,
// one line (or one JSON object) per cycle and per unused tick, the local run
// state (run/run_state.h) written after every cycle, and the --on-failure
// notifier. Time comes from a Clock (schedule/clock.h).
#pragma once

#include <string>

#include "report/reporter.h"
#include "run/cycle.h"
#include "schedule/clock.h"
#include "run/sync_run.h"
#include "schedule/duration.h"

namespace stagesync::run {

struct LoopOptions {
  std::string config_path;
  schedule::Duration every{0};       // 0: one cycle (--once)
  schedule::Duration full_every{0};  // 0: never full
  schedule::Duration backoff_max = std::chrono::hours(1);
  std::string state_path;  // empty: default_state_path(config_path)
  std::string on_failure;  // empty: no notifier
  schedule::Duration on_failure_timeout = std::chrono::seconds(30);
  bool json = false;
  SyncFunction forward;  // runs each cycle's forward step (run_sync() when empty)
};

// Returns the process's exit code: with --once the cycle's (0, or the first
// failed step's code: docs/exit-codes.md); with --every, 130 once stopped by
// a signal (it never ends otherwise).
int run_loop(const LoopOptions& options, schedule::Clock& clock, const Guard& guard, report::Reporter& out);

}  // namespace stagesync::run
