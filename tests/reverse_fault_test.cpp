// Reverse sync under faults (SPEC guarantee 1 on the desktop, decision 0008):
// the process is killed with SIGKILL at seeded random instants (at the named
// points of a run: during staging, after the desktop writes, after the pending
// bookkeeping is copied and committed, after the desktop COMMIT, after the
// promotion; and at random times), and connections are cut on either side
// after a random number of bytes. After each: every desktop row is exactly as
// before or exactly as after (points before the pending record's commit must
// leave it before, points after the desktop COMMIT after), no key is on the
// desktop twice, and the next run converges and leaves nothing pending.
// STAGESYNC_REVERSE_FAULT_TRIALS and STAGESYNC_REVERSE_FAULT_SEED run it longer or replay it.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <random>
#include <thread>

#include "support/reverse_fixture.h"
#include "support/tcp_proxy.h"

namespace stagesync::testing {
namespace {

class ReverseFaults : public ReverseFixture {
 protected:
  void SetUp() override {
    cfg_ = reverse_config("    deletes: propagate\n");
    add_mobile_rows(40);
    ASSERT_EQ(cli({"reverse", "--config", cfg_}).exit_code, 0);
  }

  // Mobile-side changes for one trial: 3 new rows, 2 updated, 1 deleted (chosen by `rng`).
  void change_mobile_side(std::mt19937_64& rng, int trial) {
    add_mobile_rows(3, "trial " + std::to_string(trial));
    pg::Result ids = tgt().exec("SELECT wd_id FROM workdiary WHERE source = 'M' ORDER BY wd_id");
    std::uniform_int_distribution<int> pick(0, ids.rows() - 1);
    for (int i = 0; i < 2; ++i) {
      tgt().exec("UPDATE workdiary SET tasknotes = 'update ' || $1 WHERE wd_id = $2::bigint",
                 std::vector<pg::Param>{std::to_string(trial) + "/" + std::to_string(i), ids.text(pick(rng), 0)});
    }
    tgt().exec("DELETE FROM workdiary WHERE wd_id = $1::bigint", std::vector<pg::Param>{ids.text(pick(rng), 0)});
  }

  void expect_converged(const std::vector<std::string>& expected, const std::string& what) {
    CliResult again = cli({"reverse", "--config", cfg_});
    EXPECT_EQ(again.exit_code, 0) << what << "\n" << again.out << again.err;
    EXPECT_EQ(mobile_diary_on_desktop(), expected) << what << ": the next run converges";
    EXPECT_EQ(desktop_count("SELECT count(*) - count(DISTINCT wd_id) FROM workdiary"), 0) << what;
    EXPECT_EQ(count("SELECT count(*) FROM stagesync.reverse_pending"), 0) << what << ": nothing left pending";
  }

  int trials_ = env_int("STAGESYNC_REVERSE_FAULT_TRIALS", 30);
  uint64_t seed_ = static_cast<uint64_t>(env_int("STAGESYNC_REVERSE_FAULT_SEED", 1212));
};

TEST_F(ReverseFaults, KillNineAtAnyInstantLeavesTheDesktopBeforeOrAfterAndTheNextRunConverges) {
  // Where a kill lands, and which state the desktop must then be in: 'b' before, 'a' after, '?' either.
  const std::vector<std::pair<std::string, char>> points = {
      {"staging", 'b'},           {"applied", 'b'},  {"pending-copied", 'b'}, {"pending-committed", 'b'},
      {"desktop-committed", 'a'}, {"promoted", 'a'}, {"random", '?'}};
  std::mt19937_64 rng(seed_);
  int before_seen = 0, after_seen = 0;
  for (int trial = 0; trial < trials_ && !HasFailure(); ++trial) {
    change_mobile_side(rng, trial);
    std::vector<std::string> before = mobile_diary_on_desktop(), expected = mobile_diary_on_target();
    const auto& [point, must] = points[trial < static_cast<int>(points.size()) ? trial : rng() % points.size()];
    std::string what =
        "trial " + std::to_string(trial) + ", kill at " + point + " (seed " + std::to_string(seed_) + ")";
    int code = 0;
    if (point == "random") {
      pid_t child = spawn({"reverse", "--config", cfg_});
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 250000)(rng)));
      kill(child, SIGKILL);
      code = wait_exit(child);
    } else {
      setenv("STAGESYNC_REVERSE_CRASH_AT", point.c_str(), 1);
      code = cli({"reverse", "--config", cfg_}).exit_code;
      unsetenv("STAGESYNC_REVERSE_CRASH_AT");
      EXPECT_EQ(code, 128 + SIGKILL) << what << ": the run must reach the point";
    }
    std::vector<std::string> now = mobile_diary_on_desktop();
    bool is_before = now == before, is_after = now == expected;
    EXPECT_TRUE(is_before || is_after) << what << ": the desktop is half-written";
    if (must == 'b') {
      EXPECT_TRUE(is_before) << what;
    }
    if (must == 'a') {
      EXPECT_TRUE(is_after) << what;
    }
    before_seen += is_before && !is_after;
    after_seen += is_after && !is_before;
    EXPECT_EQ(desktop_count("SELECT count(*) - count(DISTINCT wd_id) FROM workdiary"), 0) << what << ": a duplicate";
    expect_converged(expected, what);
    if (trial % 10 == 9) {  // and then a run writes nothing
      std::string v = desktop_versions("workdiary");
      EXPECT_EQ(cli({"reverse", "--config", cfg_}).exit_code, 0);
      EXPECT_EQ(desktop_versions("workdiary"), v) << what << ": a run after convergence wrote";
    }
  }
  std::cout << "[ reverse  ] " << trials_ << " kill trials (seed " << seed_ << "): desktop before " << before_seen
            << ", after " << after_seen << "\n";
  EXPECT_GT(before_seen, 0);
  EXPECT_GT(after_seen, 0);
}

TEST_F(ReverseFaults, ConnectionsCutOnEitherSideAreRetriedWithoutDuplicates) {
  TcpProxy target_proxy(Servers::target().port());
  TcpProxy desktop_proxy(Servers::source().port());
  std::string via =
      reverse_config("    deletes: propagate\n",
                     "postgresql://postgres@127.0.0.1:" + std::to_string(target_proxy.port()) + "/" + tgt_db_.name(),
                     "postgresql://postgres@127.0.0.1:" + std::to_string(desktop_proxy.port()) + "/" + src_db_.name());
  std::mt19937_64 rng(seed_ + 1);
  // The bytes a run with changes moves on each side are the range of cut points.
  change_mobile_side(rng, 1000);
  int64_t t0 = target_proxy.bytes(), d0 = desktop_proxy.bytes();
  ASSERT_EQ(cli({"reverse", "--config", via}).exit_code, 0);
  int64_t target_bytes = target_proxy.bytes() - t0, desktop_bytes = desktop_proxy.bytes() - d0;
  int cut = 0;
  for (int trial = 0; trial < 6 && !HasFailure(); ++trial) {
    change_mobile_side(rng, 2000 + trial);
    std::vector<std::string> expected = mobile_diary_on_target();
    bool target_side = trial % 2 == 0;
    TcpProxy& proxy = target_side ? target_proxy : desktop_proxy;
    int64_t at = std::uniform_int_distribution<int64_t>(1, target_side ? target_bytes : desktop_bytes)(rng);
    proxy.cut_after_bytes(at, 1);
    std::string what = std::string(target_side ? "target" : "desktop") + " connection cut after " + std::to_string(at) +
                       " bytes (trial " + std::to_string(trial) + ", seed " + std::to_string(seed_ + 1) + ")";
    CliResult r = cli({"reverse", "--config", via});
    proxy.cut_after_bytes(0, 0);
    cut += proxy.cuts() > 0;
    EXPECT_EQ(r.exit_code, 0) << what << "\n" << r.out << r.err;
    EXPECT_EQ(mobile_diary_on_desktop(), expected) << what;
    EXPECT_EQ(desktop_count("SELECT count(*) - count(DISTINCT wd_id) FROM workdiary"), 0) << what;
  }
  expect_converged(mobile_diary_on_target(), "after the cuts");
  EXPECT_GT(cut, 0);

  // The desktop COMMIT itself: lost before the desktop saw it (the pending record names an aborted
  // transaction: discarded, copied again) and after it committed (the answer lost: promoted, never
  // copied twice). Both are resolved by the retry through the desktop's transaction status.
  for (auto how : {TcpProxy::CommitCut::BeforeForwarding, TcpProxy::CommitCut::AfterForwarding}) {
    change_mobile_side(rng, 3000 + static_cast<int>(how));
    std::vector<std::string> expected = mobile_diary_on_target();
    int cuts = desktop_proxy.cuts();
    desktop_proxy.cut_on_commit(how);
    std::string what = how == TcpProxy::CommitCut::AfterForwarding ? "desktop COMMIT answer lost"
                                                                    : "desktop COMMIT lost before the server";
    CliResult r = cli({"reverse", "--config", via});
    desktop_proxy.cut_on_commit(TcpProxy::CommitCut::None);
    EXPECT_EQ(desktop_proxy.cuts(), cuts + 1) << what << ": the cut must happen";
    EXPECT_EQ(r.exit_code, 0) << what << "\n" << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(how == TcpProxy::CommitCut::AfterForwarding ? "had committed on the desktop"
                                                                                : "had not committed on the desktop"),
              std::string::npos)
        << what << ": resolved through the pending record\n"
        << r.out << r.err;
    EXPECT_EQ(mobile_diary_on_desktop(), expected) << what;
    EXPECT_EQ(desktop_count("SELECT count(*) - count(DISTINCT wd_id) FROM workdiary"), 0) << what;
    EXPECT_EQ(count("SELECT count(*) FROM stagesync.reverse_pending"), 0) << what;
  }
}

}  // namespace
}  // namespace stagesync::testing
