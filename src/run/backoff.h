// Jittered exponential backoff between attempts of a whole run. Time is the
// process's clock (schedule/clock.h), so tests can skip the waits.
#pragma once

#include <chrono>
#include <random>
#include <string>

#include "config/config.h"
#include "report/reporter.h"

namespace stagesync::run {

class Backoff {
 public:
  explicit Backoff(const config::Retry& policy);
  // After attempt `attempt` (1-based) failed transiently with `why`: reports
  // the retry and sleeps (returning true), or returns false when the attempts
  // or the time budget are spent. The sleep ends early on SIGINT/SIGTERM.
  bool wait_before_retry(int attempt, const std::string& why, report::Reporter& out);

 private:
  config::Retry policy_;
  std::chrono::milliseconds start_;
  std::mt19937_64 rng_;
};

}  // namespace stagesync::run
