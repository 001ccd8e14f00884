#include "run/backoff.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "pg/interrupt.h"

namespace stagesync::run {

Backoff::Backoff(const config::Retry& policy)
    : policy_(policy), start_(std::chrono::steady_clock::now()), rng_(std::random_device{}()) {}

bool Backoff::wait_before_retry(int attempt, const std::string& why, report::Reporter& out) {
  if (attempt >= policy_.attempts || pg::interrupted()) return false;
  double base = std::min(60.0, policy_.initial_delay * std::pow(2.0, attempt - 1));
  double delay = base * std::uniform_real_distribution<double>(0.5, 1.5)(rng_);
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (elapsed + delay > policy_.max_seconds) return false;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", delay);
  out.warning("attempt " + std::to_string(attempt) + " of " + std::to_string(policy_.attempts) +
              " failed with a transient error (" + why + "); the run starts again in " + secs + " s");
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(delay);
  while (std::chrono::steady_clock::now() < until) {
    if (pg::interrupted()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace stagesync::run
