// The scheduler's arithmetic, on a ManualClock (the time seam): fixed ticks
// from cycle starts, overrun ticks skipped, capped exponential backoff that is
// never faster than the cadence, durations as people write them. No server
// is involved; the loop around it is tested against real servers in run_test.
#include <gtest/gtest.h>

#include "schedule/cadence.h"
#include "schedule/clock.h"
#include "schedule/duration.h"

namespace stagesync::schedule {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

TEST(Duration, ParsesWhatPeopleWrite) {
  EXPECT_EQ(parse_duration("30s"), Duration(seconds(30)));
  EXPECT_EQ(parse_duration("5m"), Duration(minutes(5)));
  EXPECT_EQ(parse_duration("1h"), Duration(hours(1)));
  EXPECT_EQ(parse_duration("24h"), Duration(hours(24)));
  EXPECT_EQ(parse_duration("1h30m"), Duration(minutes(90)));
  EXPECT_EQ(parse_duration("2d"), Duration(hours(48)));
  EXPECT_EQ(parse_duration("250ms"), Duration(250));
  for (const char* bad : {"", "5", "m", "5 m", "-5m", "5min", "0s", "1.5h", "5m3"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
  EXPECT_EQ(format_duration(minutes(90)), "1h30m");
  EXPECT_EQ(format_duration(hours(24)), "1d");
  EXPECT_EQ(format_duration(seconds(45)), "45s");
  EXPECT_EQ(format_duration(Duration(1500)), "1.5s");
}

TEST(Cadence, TicksAreFixedFromTheFirstStartWhateverACycleTook) {
  Cadence c(minutes(5), hours(1), minutes(0));
  // A cycle of 40 s started on tick 0: the next starts on tick 1, not 5 min after its end.
  NextTick n = c.next(minutes(0), seconds(40), 0);
  EXPECT_EQ(n.at, minutes(5));
  EXPECT_EQ(n.overrun_skipped, 0);
  EXPECT_EQ(n.backoff_skipped, 0);
  // A late start (the process was busy) does not shift the grid.
  n = c.next(minutes(5) + Duration(30), minutes(5) + seconds(10), 0);
  EXPECT_EQ(n.at, minutes(10));
}

TEST(Cadence, ACycleThatOverranTicksSkipsThemAndNeverOverlaps) {
  Cadence c(minutes(1), hours(1), minutes(0));
  // Started on tick 3, ran 2.5 min: ticks 4 and 5 passed unused, the next is tick 6.
  NextTick n = c.next(minutes(3), minutes(5) + seconds(30), 0);
  EXPECT_EQ(n.at, minutes(6));
  EXPECT_EQ(n.overrun_skipped, 2);
  // Ending exactly on a tick: that tick is used.
  n = c.next(minutes(3), minutes(4), 0);
  EXPECT_EQ(n.at, minutes(4));
  EXPECT_EQ(n.overrun_skipped, 0);
}

TEST(Cadence, BackoffDoublesIsCappedAndNeverFasterThanTheCadence) {
  Cadence c(minutes(5), hours(1), minutes(0));
  std::vector<Duration> expected = {minutes(5), minutes(10), minutes(20), minutes(40), hours(1), hours(1)};
  for (int failures = 1; failures <= 6; ++failures) {
    EXPECT_EQ(c.backoff(failures), expected[failures - 1]) << failures;
  }
  EXPECT_EQ(c.backoff(0), minutes(5));
  // A cap below the cadence is the cadence: never faster.
  Cadence tight(minutes(5), minutes(1), minutes(0));
  EXPECT_EQ(tight.backoff(3), minutes(5));
  // After the third failure in a row (cycle on tick 2), the next attempt is 20 min later: 3 ticks unused.
  NextTick n = c.next(minutes(10), minutes(10) + seconds(3), 3);
  EXPECT_EQ(n.at, minutes(30));
  EXPECT_EQ(n.backoff_skipped, 3);
  EXPECT_EQ(n.overrun_skipped, 0);
}

// The loop's timeline over a day of failures and a recovery, on the ManualClock:
// attempts only on ticks, spaced as the backoff says, no time actually waited.
TEST(Cadence, ADayOfOneMinuteTicksOnTheManualClock) {
  ManualClock clock;
  Cadence c(minutes(1), minutes(16), clock.elapsed());
  std::vector<Duration> attempts;
  int failures = 0;
  while (clock.elapsed() < hours(24)) {
    Duration start = clock.elapsed();
    attempts.push_back(start);
    clock.advance(seconds(2));                           // the cycle
    bool fails = start >= hours(1) && start < hours(3);  // the target is down from 1:00 to 3:00
    failures = fails ? failures + 1 : 0;
    NextTick n = c.next(start, clock.elapsed(), failures);
    ASSERT_TRUE(clock.sleep_for(n.at - clock.elapsed()));
    ASSERT_EQ(clock.elapsed(), n.at);
  }
  // Down for two hours: attempts at 1:00, 1:01, 1:03, 1:07, 1:15, 1:31 (then every 16 min, the cap);
  // the first attempt after 3:00 (3:07) succeeds.
  std::vector<int> expected = {60, 61, 63, 67, 75, 91, 107, 123, 139, 155, 171, 187, 188};
  std::vector<int> seen;
  for (size_t i = 0; i < attempts.size(); ++i) {
    if (i > 0) {
      Duration gap = attempts[i] - attempts[i - 1];
      EXPECT_GE(gap, minutes(1)) << "never faster than the cadence";
      EXPECT_LE(gap, minutes(16)) << "never slower than the cap";
    }
    EXPECT_EQ(attempts[i].count() % minutes(1).count(), 0) << "attempts start on ticks";
    int minute = static_cast<int>(attempts[i] / minutes(1));
    if (minute >= 60 && minute <= 188) seen.push_back(minute);
  }
  EXPECT_EQ(seen, expected);
  // Recovered on the first attempt after 3:00, then every minute again.
  EXPECT_EQ(attempts.back() - attempts[attempts.size() - 2], minutes(1));
  EXPECT_EQ(clock.slept() + seconds(2) * static_cast<int64_t>(attempts.size()), clock.elapsed());
}

}  // namespace
}  // namespace stagesync::schedule
