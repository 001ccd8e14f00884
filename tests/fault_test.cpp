// Survive faults (SPEC guarantees 1, 6, 7, 8): connections cut by a TCP proxy
// after a random number of bytes, cut exactly at COMMIT (in-doubt commits),
// a target restart mid-run, SIGTERM, two runs at once, and a concurrent
// writer playing the mobile app. After each: every table at its exact before-
// or after-state, nothing duplicated, the next run succeeds, nothing left over.
// STAGESYNC_FAULT_TRIALS and STAGESYNC_FAULT_SEED run the randomized part longer.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <thread>

#include "support/scenario.h"
#include "support/tcp_proxy.h"

namespace stagesync::testing {
namespace {

class Faults : public Scenario {
 protected:
  void SetUp() override { build(0.05, "retry: { attempts: 6, initial_delay: 0.2 }\n"); }

  // A fresh copy of the template, reached through a proxy.
  struct Trial {
    std::unique_ptr<TempDatabase> db;
    std::unique_ptr<TcpProxy> proxy;
    std::string cfg;
  };
  Trial trial() {
    Trial t;
    t.db = std::make_unique<TempDatabase>(Servers::target(), "fault");
    recreate_from_template(t.db->name());
    t.proxy = std::make_unique<TcpProxy>(Servers::target().port());
    t.cfg = config_for("postgresql://postgres@127.0.0.1:" + std::to_string(t.proxy->port()) + "/" + t.db->name());
    return t;
  }
  int64_t runs(pg::Connection& c, const std::string& status) {
    return c.exec("SELECT count(*) FROM stagesync.runs WHERE status = $1", std::vector<pg::Param>{status}).int64(0, 0);
  }
};

TEST_F(Faults, ConnectionsCutAfterRandomBytesAreRetriedToTheAfterState) {
  // The bytes an undisturbed run moves through the proxy are the range of cut points.
  int64_t total = 0;
  {
    Trial t = trial();
    ASSERT_EQ(cli({"sync", "--config", t.cfg}).exit_code, 0);
    total = t.proxy->bytes();
  }
  int trials = env_int("STAGESYNC_FAULT_TRIALS", 120);
  uint64_t seed = static_cast<uint64_t>(env_int("STAGESYNC_FAULT_SEED", 4242));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> where(1, total);
  int retried = 0;
  for (int i = 0; i < trials && !HasFailure(); ++i) {
    Trial t = trial();
    // The first trials cut near the very end (after COMMIT, while staging is dropped); the rest at random.
    int64_t cut = i == 0 ? total - 300 : i == 1 ? total - 3000 : where(rng);
    t.proxy->cut_after_bytes(cut, 1);
    std::string what = "cut after " + std::to_string(cut) + " bytes (trial " + std::to_string(i) + ", seed " +
                       std::to_string(seed) + ")";
    CliResult r = cli({"sync", "--config", t.cfg});
    EXPECT_EQ(r.exit_code, 0) << what << "\n" << r.out << r.err;
    retried += t.proxy->cuts();
    pg::Connection c = t.db->connect();
    EXPECT_EQ(snapshot(c), after_) << what;
    expect_clean(c, what);
    EXPECT_EQ(runs(c, "succeeded"), 2) << what << ": exactly one more successful run than the template's";
  }
  std::cout << "[ faults   ] " << trials << " byte-cut trials over " << total << " bytes, " << retried
            << " connections cut and retried\n";
  EXPECT_GT(retried, trials / 2) << "most cut points must fall inside a run";
}

TEST_F(Faults, CommitLostBeforeTheServerSawItIsRetriedNotReportedDone) {
  Trial t = trial();
  t.proxy->cut_on_commit(TcpProxy::CommitCut::BeforeForwarding);
  CliResult r = cli({"sync", "--config", t.cfg, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(t.proxy->cuts(), 1);
  EXPECT_NE(r.out.find("did not commit"), std::string::npos) << r.out;
  pg::Connection c = t.db->connect();
  EXPECT_EQ(snapshot(c), after_);
  EXPECT_EQ(runs(c, "succeeded"), 2);
  EXPECT_EQ(runs(c, "abandoned") + runs(c, "failed"), 1) << "the lost attempt is recorded as not done";
  expect_clean(c, "commit cut before forwarding");
}

TEST_F(Faults, CommitThatLandedIsRecognisedAndNeverReapplied) {
  Trial t = trial();
  t.proxy->cut_on_commit(TcpProxy::CommitCut::AfterForwarding);
  CliResult r = cli({"sync", "--config", t.cfg, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(t.proxy->cuts(), 1);
  EXPECT_NE(r.out.find("did commit"), std::string::npos) << r.out;
  pg::Connection c = t.db->connect();
  EXPECT_EQ(snapshot(c), after_);
  EXPECT_EQ(runs(c, "succeeded"), 2) << "one run, applied once";
  EXPECT_EQ(runs(c, "abandoned") + runs(c, "failed"), 0);
  // Leftover staging tables of the in-doubt run are dropped by this or the next run.
  EXPECT_EQ(cli({"sync", "--config", t.cfg}).exit_code, 0);
  expect_clean(c, "commit cut after forwarding");
}

TEST_F(Faults, TargetRestartMidRunIsRetried) {
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> when(0.0, duration_);
  for (int i = 0; i < 3; ++i) {
    TempDatabase db(Servers::target(), "restart");
    recreate_from_template(db.name());
    std::string cfg = config_for(db.url());
    pid_t pid = spawn({"sync", "--config", cfg});
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng)));
    Servers::target().restart("immediate");
    EXPECT_EQ(wait_exit(pid), 0) << "trial " << i;
    pg::Connection c = db.connect();
    EXPECT_EQ(snapshot(c), after_) << "trial " << i;
    EXPECT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
    expect_clean(c, "restart trial " + std::to_string(i));
  }
}

TEST_F(Faults, SigtermCancelsWhatIsRunningAndChangesNothing) {
  std::mt19937_64 rng(5);
  // After the run's target session appears (the handlers are installed by
  // then, even under sanitizers), a point within the first 10-60% of what is
  // left of an undisturbed run: `duration_` minus this trial's start-up (a
  // fraction of the whole duration missed the run when start-up took most of
  // it, as under the sanitizers).
  std::uniform_real_distribution<double> when(0.1, 0.6);
  int interrupted = 0, recorded_failed = 0;
  for (int i = 0; i < 5; ++i) {
    TempDatabase db(Servers::target(), "sigterm");
    recreate_from_template(db.name());
    std::string cfg = config_for(db.url());
    auto spawned = std::chrono::steady_clock::now();
    pid_t pid = spawn({"sync", "--config", cfg});
    // The handlers are installed before the first connection: wait for the
    // run's target session (a slow start-up under sanitizers is not the run).
    pg::Connection watch = db.connect();
    for (int k = 0; k < 400 && watch.exec("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = "
                                           "pg_catalog.current_database() AND application_name = 'stagesync'")
                                       .int64(0, 0) == 0;
         ++k) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    double started = std::chrono::duration<double>(std::chrono::steady_clock::now() - spawned).count();
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng) * std::max(duration_ - started, 0.05)));
    kill(pid, SIGTERM);
    int code = wait_exit(pid);
    EXPECT_TRUE(code == 130 || code == 0) << "trial " << i << ": exit " << code;
    interrupted += code == 130;
    pg::Connection c = db.connect();
    std::string state = judge(c, "sigterm trial " + std::to_string(i));
    if (code == 130) {
      EXPECT_NE(state, "after") << "an interrupted run must not commit";
      expect_clean(c, "sigterm trial " + std::to_string(i));
      // Interrupted before its run record was written (while connecting or
      // checking), there is nothing to record; after it, the record says failed.
      EXPECT_EQ(runs(c, "running"), 0) << "trial " << i;
      int64_t failed = runs(c, "failed");
      EXPECT_LE(failed, 1) << "trial " << i;
      EXPECT_EQ(c.exec("SELECT count(*) FROM stagesync.runs").int64(0, 0), 1 + failed)
          << "trial " << i << ": every run this trial recorded is marked failed";
      recorded_failed += failed;
    }
  }
  EXPECT_GT(interrupted, 0);
  EXPECT_GT(recorded_failed, 0) << "at least one trial must interrupt a run that had recorded itself";

  // Without timing the machine: a run that cannot finish by itself (it waits for a source table the
  // desktop application has locked, and nothing times that wait out) ends on SIGTERM, so the signal
  // cancelled the statement that was running; nothing changed and nothing is left over.
  TempDatabase db(Servers::target(), "sigterm");
  recreate_from_template(db.name());
  std::string cfg = config_for(db.url());
  pg::Connection app = src_db_.connect();
  app.exec("BEGIN");
  app.exec("LOCK TABLE jobtasks IN ACCESS EXCLUSIVE MODE");
  pid_t pid = spawn({"sync", "--config", cfg});
  pg::Connection a = admin(Servers::source());
  bool waiting = false;
  for (int i = 0; i < 6000 && !waiting; ++i) {  // a hang guard, not a time limit on the run
    waiting = a.exec(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stagesync (source)' "
                   "AND wait_event_type = 'Lock'")
                  .int64(0, 0) > 0;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(waiting) << "the run never reached the locked table";
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 130);
  EXPECT_EQ(app.exec("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND granted AND relation = "
                     "'jobtasks'::regclass AND mode = 'AccessExclusiveLock'")
                .int64(0, 0),
            1)
      << "the application still held its lock: the run ended because of the signal alone";
  app.exec("ROLLBACK");
  pg::Connection c = db.connect();
  EXPECT_EQ(judge(c, "sigterm while waiting"), "before");
  expect_clean(c, "sigterm while waiting");
}

TEST_F(Faults, TwoRunsStartedTogetherNeverInterleave) {
  TempDatabase db(Servers::target(), "pair");
  recreate_from_template(db.name());
  std::string cfg = config_for(db.url());
  pid_t a = spawn({"sync", "--config", cfg});
  pid_t b = spawn({"sync", "--config", cfg});
  int ca = wait_exit(a), cb = wait_exit(b);
  EXPECT_TRUE((ca == 0 && (cb == 0 || cb == 7)) || (cb == 0 && ca == 7)) << ca << " " << cb;
  pg::Connection c = db.connect();
  EXPECT_EQ(snapshot(c), after_);
  pid_t w1 = spawn({"sync", "--config", cfg, "--wait", "60"});
  pid_t w2 = spawn({"sync", "--config", cfg, "--wait", "60"});
  EXPECT_EQ(wait_exit(w1), 0);
  EXPECT_EQ(wait_exit(w2), 0);
  EXPECT_EQ(snapshot(c), after_);
  expect_clean(c, "two runs");
}

TEST_F(Faults, ConcurrentMobileWriterIsNeverLostNorBlockedForLong) {
  TempDatabase db(Servers::target(), "writer");
  recreate_from_template(db.name());
  std::string cfg = config_for(db.url());
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::atomic<int> app_pid{0};
  std::thread writer([&] {
    pg::Connection app = db.connect();
    app_pid = static_cast<int>(app.exec("SELECT pg_backend_pid()").int64(0, 0));
    for (int i = 0; !stop; ++i) {
      app.exec("INSERT INTO climaster (client_id, client_name, source) VALUES ($1, 'from the app', 'M')",
               std::vector<pg::Param>{std::to_string(800000000 + i)});
      app.exec("UPDATE climaster SET client_name = 'edited ' || $1 WHERE source = 'M' AND client_id = 900000001",
               std::vector<pg::Param>{std::to_string(i)});
      app.exec("SELECT count(*) FROM jobshead");
      ++written;
    }
  });
  // Without timing the machine: while the syncs run, the app's session is sampled; it must never be
  // seen waiting for a lock that a stagesync session holds (no long exclusive locks, guarantee 8).
  std::atomic<int> samples{0}, blocked{0};
  std::thread watcher([&] {
    pg::Connection w = admin(Servers::target());
    while (!stop) {
      if (app_pid == 0) continue;
      blocked +=
          static_cast<int>(w.exec("SELECT count(*) FROM pg_stat_activity a WHERE a.pid = $1 AND EXISTS (SELECT 1 FROM "
                                  "pg_stat_activity s WHERE s.pid = ANY (pg_catalog.pg_blocking_pids(a.pid)) AND "
                                  "s.application_name = 'stagesync')",
                                  std::vector<pg::Param>{std::to_string(app_pid.load())})
                               .int64(0, 0));
      ++samples;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  for (int i = 0; i < 4; ++i) EXPECT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
  stop = true;
  writer.join();
  watcher.join();
  pg::Connection c = db.connect();
  EXPECT_EQ(c.exec("SELECT count(*) FROM climaster WHERE client_id >= 800000000 AND client_id < 900000000").int64(0, 0),
            written.load());
  EXPECT_EQ(blocked.load(), 0) << "the app waited for a lock held by the sync in " << blocked << " of " << samples
                               << " samples";
  EXPECT_GT(samples.load(), 10);
  EXPECT_GT(written.load(), 10);
  std::cout << "[ faults   ] app wrote " << written << " rows during 4 syncs; " << samples
            << " samples of its session, none waiting for the sync\n";
}

}  // namespace
}  // namespace stagesync::testing
