// Time, behind a seam: the scheduler and the backoff between attempts read
// the time and sleep only through a Clock, so tests can run a day of
// one-minute cycles without waiting for it.
//
//   SystemClock   the real one (steady clock for intervals, system clock for what people read)
//   ManualClock   time moves only when a test moves it (or something sleeps): in-process tests
//   SkippingClock the real clock, except that a sleep returns after a few real milliseconds and the
//                 rest of it is skipped: time jumps ahead. Selected in a stagesync process by the
//                 test-only environment variable STAGESYNC_TEST_CLOCK=skip (20 ms of real time per
//                 sleep) or skip:MS (process_clock()).
//
// Every sleep ends early when a stop was requested (SIGINT/SIGTERM: pg::interrupted()).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "schedule/duration.h"

namespace stagesync::schedule {

class Clock {
 public:
  using WallTime = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic time since an arbitrary origin: what cadences and backoffs are measured in.
  virtual Duration elapsed() = 0;
  // The wall-clock time now, for records and for people.
  virtual WallTime wall() = 0;
  // Sleeps for `d`. Returns false, early, when a stop was requested.
  virtual bool sleep_for(Duration d) = 0;
};

class SystemClock : public Clock {
 public:
  SystemClock();
  Duration elapsed() override;
  WallTime wall() override;
  bool sleep_for(Duration d) override;

 private:
  std::chrono::steady_clock::time_point origin_;
};

class ManualClock : public Clock {
 public:
  explicit ManualClock(WallTime wall_origin = WallTime{}) : wall_origin_(wall_origin) {}
  Duration elapsed() override { return now_; }
  WallTime wall() override { return wall_origin_ + now_; }
  bool sleep_for(Duration d) override;
  void advance(Duration d) { now_ += d; }
  Duration slept() const { return slept_; }  // the sum of every sleep

 private:
  WallTime wall_origin_;
  Duration now_{0};
  Duration slept_{0};
};

class SkippingClock : public SystemClock {
 public:
  explicit SkippingClock(Duration real_per_sleep = Duration(20)) : real_(real_per_sleep) {}
  Duration elapsed() override { return SystemClock::elapsed() + skipped_; }
  WallTime wall() override { return SystemClock::wall() + skipped_; }
  bool sleep_for(Duration d) override;

 private:
  Duration real_;
  Duration skipped_{0};
};

// The clock of this process: a SystemClock, or a SkippingClock under STAGESYNC_TEST_CLOCK=skip[:MS].
Clock& process_clock();

// "2026-12-06T13:46:51Z"
std::string iso_utc(Clock::WallTime t);
// The inverse (nullopt when `text` is not of that form).
std::optional<Clock::WallTime> parse_iso_utc(const std::string& text);

}  // namespace stagesync::schedule
