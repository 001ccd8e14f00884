#include "schedule/clock.h"

#include <cstdlib>
#include <ctime>
#include <memory>
#include <thread>

#include "pg/interrupt.h"

namespace stagesync::schedule {
namespace {

// Real sleeping in slices, so a signal ends it within a slice.
bool sleep_real(std::chrono::steady_clock::duration d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    if (pg::interrupted()) return false;
    auto left = until - std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(50)));
  }
  return !pg::interrupted();
}

}  // namespace

SystemClock::SystemClock() : origin_(std::chrono::steady_clock::now()) {}

Duration SystemClock::elapsed() {
  return std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now() - origin_);
}

Clock::WallTime SystemClock::wall() { return std::chrono::system_clock::now(); }

bool SystemClock::sleep_for(Duration d) { return sleep_real(d); }

bool ManualClock::sleep_for(Duration d) {
  if (pg::interrupted()) return false;
  if (d.count() > 0) {
    now_ += d;
    slept_ += d;
  }
  return true;
}

bool SkippingClock::sleep_for(Duration d) {
  // A few real milliseconds, so a signal sent "between cycles" can land there.
  Duration real = std::min(d, real_);
  if (!sleep_real(real)) return false;
  if (d > real) skipped_ += d - real;
  return true;
}

Clock& process_clock() {
  static std::unique_ptr<Clock> clock = [] {
    // Test-only: never set in production (an unknown value is the real clock).
    std::string v = std::getenv("STAGESYNC_TEST_CLOCK") ? std::getenv("STAGESYNC_TEST_CLOCK") : "";
    if (v == "skip") return std::unique_ptr<Clock>(new SkippingClock());
    if (v.rfind("skip:", 0) == 0) return std::unique_ptr<Clock>(new SkippingClock(Duration(std::atoi(v.c_str() + 5))));
    return std::unique_ptr<Clock>(new SystemClock());
  }();
  return *clock;
}

std::string iso_utc(Clock::WallTime t) {
  std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&s, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::optional<Clock::WallTime> parse_iso_utc(const std::string& text) {
  std::tm utc{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  if (!end || *end) return std::nullopt;
  return std::chrono::system_clock::from_time_t(timegm(&utc));
}

}  // namespace stagesync::schedule
