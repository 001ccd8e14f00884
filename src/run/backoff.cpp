#include "run/backoff.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "pg/interrupt.h"
#include "schedule/clock.h"

namespace stagesync::run {

Backoff::Backoff(const config::Retry& policy)
    : policy_(policy), start_(schedule::process_clock().elapsed()), rng_(std::random_device{}()) {}

bool Backoff::wait_before_retry(int attempt, const std::string& why, report::Reporter& out) {
  if (attempt >= policy_.attempts || pg::interrupted()) return false;
  double base = std::min(60.0, policy_.initial_delay * std::pow(2.0, attempt - 1));
  double delay = base * std::uniform_real_distribution<double>(0.5, 1.5)(rng_);
  schedule::Clock& clock = schedule::process_clock();
  double elapsed = std::chrono::duration<double>(clock.elapsed() - start_).count();
  if (elapsed + delay > policy_.max_seconds) return false;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", delay);
  out.warning("attempt " + std::to_string(attempt) + " of " + std::to_string(policy_.attempts) +
              " failed with a transient error (" + why + "); the run starts again in " + secs + " s");
  return clock.sleep_for(std::chrono::milliseconds(static_cast<int64_t>(delay * 1000)));
}

}  // namespace stagesync::run
