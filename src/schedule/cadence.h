// When the next cycle of `stagesync run --every D` starts.
//
// Ticks are fixed: origin + k * every (the origin is the first cycle's
// start), whatever each cycle took. Cycles never overlap: a cycle that runs
// past one or more ticks makes them pass unused ("overrun"). After failed
// cycles the next attempt waits an exponentially growing number of ticks
// ("backoff"): the delay after n consecutive failures is every * 2^(n-1),
// capped at `backoff_max` and never shorter than `every`, so a failing
// target is never tried more often than the cadence.
#pragma once

#include <cstdint>

#include "schedule/duration.h"

namespace stagesync::schedule {

struct NextTick {
  Duration at{0};               // when the next cycle starts (the clock's elapsed() scale)
  int64_t overrun_skipped = 0;  // ticks the last cycle ran past
  int64_t backoff_skipped = 0;  // later ticks left unused to back off
};

class Cadence {
 public:
  Cadence(Duration every, Duration backoff_max, Duration origin);
  // The last cycle started at `started` and ended at `ended`; `failures`
  // consecutive cycles, that one included, have failed (0: it succeeded).
  NextTick next(Duration started, Duration ended, int failures) const;
  // The least time between the start of a failed cycle and the next attempt.
  Duration backoff(int failures) const;
  Duration every() const { return every_; }

 private:
  int64_t index_at_or_after(Duration t) const;  // first tick k with tick(k) >= t
  Duration tick(int64_t k) const { return origin_ + every_ * k; }
  Duration every_, backoff_max_, origin_;
};

}  // namespace stagesync::schedule
