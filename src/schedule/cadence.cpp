#include "schedule/cadence.h"

#include <algorithm>

namespace stagesync::schedule {

Cadence::Cadence(Duration every, Duration backoff_max, Duration origin)
    : every_(every), backoff_max_(std::max(backoff_max, every)), origin_(origin) {}

int64_t Cadence::index_at_or_after(Duration t) const {
  if (t <= origin_) return 0;
  return ((t - origin_).count() + every_.count() - 1) / every_.count();
}

Duration Cadence::backoff(int failures) const {
  if (failures <= 0) return every_;
  Duration d = every_;
  for (int i = 1; i < failures && d < backoff_max_; ++i) d *= 2;
  return std::min(d, backoff_max_);
}

NextTick Cadence::next(Duration started, Duration ended, int failures) const {
  // The tick the last cycle started on (a late start counts as its tick).
  int64_t own = std::max<int64_t>(0, (started - origin_).count() / every_.count());
  int64_t free = std::max(own + 1, index_at_or_after(ended));  // the first tick after the cycle ended
  // Backoff counts from the tick the failed cycle belonged to (a late start does not push it further).
  int64_t due = failures <= 0 ? free : std::max(free, index_at_or_after(tick(own) + backoff(failures)));
  NextTick n;
  n.at = tick(due);
  n.overrun_skipped = free - own - 1;
  n.backoff_skipped = due - free;
  return n;
}

}  // namespace stagesync::schedule
