// follow_bench: `stagesync follow` measured from outside (issue 16, item 8; docs/performance.md,
// "Continuous sync (follow) and capture: logical"). Every stagesync run is the real binary as a child
// process: nothing here depends on how follow stages a batch.
//
// Two throwaway servers: the desktop (wal_level = logical, as tests/support's Servers::logical()) and the
// target. Every stagesync connection to the target goes through tests/support/tcp_proxy, delayed by each
// --rtt-ms (a round trip: half of it each way, as in sync_bench and sqlite_bench; 0: forwarded without
// delay) and counting round trips. The desktop is direct (the office LAN). The benchmark's own writer and
// watcher connect directly to their server.
//
// 1. Commit-to-cloud latency (database latency_desktop, the demo's reference data at --latency-scale).
//    Per RTT a fresh target; per rate a `stagesync follow --interval I` child runs for the whole
//    measurement (the first one does the slot's full sync; later ones resume from the slot), started and
//    warmed up (one row committed and seen on the target) before the clock starts. A writer on its own
//    desktop connection commits --rate transactions per second for --seconds, each scheduled against a
//    steady clock (start + i / rate, never sleep-after-work): one autocommit INSERT of a task into jobtasks
//    (the largest followed table: lookup of client_id from jobshead, references), whose task_id is
//    1,000,000 + a sequence number. The time right after each COMMIT returns is recorded. A watcher on its
//    own target connection polls every --poll-ms for the highest sequence number visible (an index probe on
//    the target's key) and records when each number first became visible: every number up to the visible
//    maximum is visible then (the writer's transactions are applied in commit order). latency = visible -
//    commit; it includes up to one poll interval.
// 2. capture: logical against the full sync and the digest method (database capture_desktop at --scale).
//    Two target databases: A taken by `stagesync follow --once` (first run: the slot and a full sync in its
//    snapshot, timed), B by `stagesync sync --mode full` (timed: "the full sync"). Then the demo's change
//    batch (desktop_changes_sql: ~1% of jobshead and jobtasks updated, inserts, one client deleted with its
//    jobs) and 1% of the rows of climaster, cliunimaster, jobshead and jobtasks deleted (TABLESAMPLE),
//    then, timed: `sync --mode incremental` of B (the transaction-id window and key digests) and `follow
//    --once` of A (the slot). Both targets are then checked with `stagesync verify`. The mass-delete
//    guard's default (20% of a table) is not approached. Desktop statements slower than --desktop-log-ms
//    during the two timed change runs are printed (log_min_duration_statement). A timed change run that
//    outlasts --limit seconds is stopped with SIGINT (it rolls back) and reported as "> limit": at scale 10
//    the PostgreSQL source's fetch of jobtasks ran for minutes (docs/performance.md), and the whole
//    benchmark should stay within about 15 minutes.
//
//   follow_bench [--rates 10,200] [--seconds 30] [--rtt-ms 0,50] [--interval 0.2] [--poll-ms 5]
//                [--latency-scale 1] [--scale 10] [--repeat 1] [--only latency|capture]
//                [--desktop-log-ms 2000] [--limit 120] [--keep] [--stagesync PATH] [--markdown]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "cluster/local_cluster.h"
#include "demo/reference_data.h"
#include "pg/connection.h"
#include "support/tcp_proxy.h"

namespace {

using namespace stagesync;
using namespace stagesync::bench;
using namespace std::chrono_literals;

struct Options {
  std::vector<int> rates = {10, 200};
  double seconds = 30;
  std::vector<int> rtt_ms = {0, 50};
  double interval = 0.2;
  int poll_ms = 5;
  double latency_scale = 1;
  double scale = 10;
  int repeat = 1;
  bool latency = true;
  bool capture = true;
  int desktop_log_ms = 2000;
  double limit = 120;  // seconds a timed change run may take before it is stopped
  bool keep = false;
  // --replica-identity full: target A's configuration opts in (`follow: { replica_identity: full }`,
  // applied by `follow --apply-replica-identity` before its first run), so that the desktop's deletes
  // (its tables have no primary key) carry their old rows and batches can list their keys.
  bool identity_full = false;
  std::string stagesync;
  bool markdown = false;
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "follow_bench: " << problem << "\n";
  std::cerr << "usage: follow_bench [--rates 10,200] [--seconds 30] [--rtt-ms 0,50] [--interval 0.2] [--poll-ms 5]\n"
               "                    [--latency-scale 1] [--scale 10] [--repeat 1] [--only latency|capture]\n"
               "                    [--desktop-log-ms 2000] [--limit 120] [--replica-identity default|full]\n"
               "                    [--keep] [--stagesync PATH]\n"
               "                    [--markdown]\n";
  std::exit(2);
}

std::vector<int> int_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream list(text);
  for (std::string s; std::getline(list, s, ',');) out.push_back(std::stoi(s));
  return out;
}

Options parse_args(int argc, char** argv) {
  Options o;
  o.stagesync = default_stagesync();
  Args args(argc, argv, [](const std::string& problem) { usage(problem); });
  for (std::string a; args.next(a);) {
    auto value = [&] { return args.value(); };
    try {
      if (a == "--rates") {
        o.rates = int_list(value());
      } else if (a == "--seconds") {
        o.seconds = std::stod(value());
      } else if (a == "--rtt-ms") {
        o.rtt_ms = int_list(value());
      } else if (a == "--interval") {
        o.interval = std::stod(value());
      } else if (a == "--poll-ms") {
        o.poll_ms = std::stoi(value());
      } else if (a == "--latency-scale") {
        o.latency_scale = std::stod(value());
      } else if (a == "--scale") {
        o.scale = std::stod(value());
      } else if (a == "--repeat") {
        o.repeat = std::stoi(value());
      } else if (a == "--only") {
        std::string which = value();
        if (which != "latency" && which != "capture") usage("--only is latency or capture");
        o.latency = which == "latency";
        o.capture = which == "capture";
      } else if (a == "--desktop-log-ms") {
        o.desktop_log_ms = std::stoi(value());
      } else if (a == "--limit") {
        o.limit = std::stod(value());
      } else if (a == "--replica-identity") {
        std::string which = value();
        if (which != "default" && which != "full") usage("--replica-identity is default or full");
        o.identity_full = which == "full";
      } else if (a == "--keep") {
        o.keep = true;
      } else if (a == "--stagesync") {
        o.stagesync = value();
      } else if (a == "--markdown") {
        o.markdown = true;
      } else {
        usage(a == "--help" || a == "-h" ? "" : "unknown argument " + a);
      }
    } catch (const std::logic_error&) {
      usage("bad value for " + a);
    }
  }
  if (o.rates.empty() || *std::min_element(o.rates.begin(), o.rates.end()) < 1) usage("--rates: 1 or more each");
  if (o.rtt_ms.empty() || *std::min_element(o.rtt_ms.begin(), o.rtt_ms.end()) < 0) usage("--rtt-ms: 0 or more");
  if (o.seconds <= 0 || o.interval <= 0 || o.poll_ms < 1) usage("--seconds, --interval and --poll-ms must be positive");
  if (o.scale <= 0 || o.latency_scale <= 0) usage("--scale and --latency-scale must be positive");
  if (o.repeat < 1) usage("--repeat must be at least 1");
  return o;
}

const char* const kApp = "follow_bench";
constexpr int64_t kTaskBase = 1000000;  // task_id = kTaskBase + sequence number: above every generated task id

std::string file_text(const std::string& path, std::uintmax_t from = 0) {
  std::ifstream in(path);
  in.seekg(static_cast<std::streamoff>(from));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Nearest-rank percentile of sorted `v` (ms).
double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// What a follow child's log says it applied: its batches and their desktop transactions.
struct FollowLog {
  int64_t batches = 0;
  int64_t transactions = 0;
};

FollowLog read_follow_log(const std::string& path) {
  static const std::regex batch(R"(batch \S+: ([0-9]+) desktop transaction)");
  FollowLog out;
  std::ifstream in(path);
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, m, batch)) {
      ++out.batches;
      out.transactions += std::stoll(m[1].str());
    }
  }
  return out;
}

struct LatencyResult {
  int rtt = 0;
  int rate = 0;
  int64_t committed = 0;
  int64_t not_seen = 0;
  std::vector<double> ms;     // sorted
  double writer_late_ms = 0;  // the most a commit returned after its scheduled time
  FollowLog log;
  long follow_rss_kb = 0;
};

struct Measured {
  ChildRun run;
  LinkUse link;
  bool stopped = false;                     // outlasted its limit: stopped with SIGINT, rolled back
  std::vector<std::string> active_at_stop;  // the desktop statements running then (seconds, text)
};

// The ids of the running processes whose command line is `argv0` followed by `arg` somewhere.
std::vector<pid_t> processes_running(const std::string& argv0, const std::string& arg) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::vector<std::string> args;
    for (std::string a; std::getline(in, a, '\0');) args.push_back(a);
    if (!args.empty() && args[0] == argv0 && std::find(args.begin() + 1, args.end(), arg) != args.end())
      out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

// A desktop statement the server logged (log_min_duration_statement).
struct SlowStatement {
  double ms = 0;
  std::string sql;
};

class Bench {
 public:
  explicit Bench(const Options& o) : o_(o), proxy_(target_.port()) {
    pg::Connection admin = connect(desktop_, "postgres", kApp);
    // wal_level is read only at start: ALTER SYSTEM, then a restart (as tests/support's Servers::logical()).
    admin.exec("ALTER SYSTEM SET wal_level = logical");
    admin.exec("ALTER SYSTEM SET log_min_duration_statement = " + std::to_string(o.desktop_log_ms));
    admin.exec("ALTER SYSTEM SET log_parameter_max_length = 200");
    admin.close();
    desktop_.restart();
    server_version_ = connect(desktop_, "postgres", kApp).exec("SHOW server_version").text(0, 0);
    if (o.keep) {
      desktop_.keep();
      target_.keep();
    }
  }

  const std::string& server_version() const { return server_version_; }
  std::string servers() const { return "desktop " + desktop_.url("postgres") + ", target " + target_.url("postgres"); }

  // Creates database `db` on the desktop with the demo's reference data at `scale`; returns seconds.
  double make_desktop(const std::string& db, double scale) {
    auto t0 = Clock::now();
    desktop_.create_database(db);
    pg::Connection desktop = connect(desktop_, db, kApp);
    for (const auto& sql : demo::desktop_schema_sql()) desktop.exec(sql);
    for (const auto& sql : demo::desktop_data_sql(scale, 42)) desktop.exec(sql);
    return since(t0);
  }

  // A configuration from `desktop_db` to `target_db` through the proxy; returns its path.
  std::string config(const std::string& desktop_db, const std::string& target_db) {
    std::string via_proxy = "postgresql://postgres@127.0.0.1:" + std::to_string(proxy_.port()) + "/" + target_db;
    std::string path = target_.directory() + "/" + target_db + ".yaml";
    std::ofstream(path) << demo::demo_config_yaml(desktop_.url(desktop_db), via_proxy);
    return path;
  }

  void set_rtt(int rtt_ms) {
    rtt_ms_ = rtt_ms;
    proxy_.set_delay(std::chrono::milliseconds(rtt_ms / 2));
  }

  void fresh_target(const std::string& db) { fresh_cloud(target_, db, kApp); }
  void settle_targets(const std::vector<std::string>& dbs) {
    for (const auto& db : dbs) connect(target_, db, kApp).exec("VACUUM ANALYZE");
    checkpoint({&desktop_, &target_}, kApp);
  }

  // A stagesync command run to its end, and what it sent to the target. With `limit` > 0, a run still
  // going after `limit` seconds is stopped with SIGINT (found by its configuration file's path, which
  // is this benchmark's own) and reported as stopped.
  Measured stagesync(const std::vector<std::string>& args, const std::string& log_name, double limit = 0) {
    proxy_.reset_counters();
    std::vector<std::string> all = {o_.stagesync};
    all.insert(all.end(), args.begin(), args.end());
    std::string config = *(std::find(args.begin(), args.end(), "--config") + 1);
    std::mutex mu;
    std::condition_variable finished;
    bool done = false;
    std::atomic<bool> stopped{false};
    std::vector<std::string> active;  // written by the watchdog, read after its join
    std::thread watchdog;
    if (limit > 0) {
      watchdog = std::thread([&] {
        std::unique_lock<std::mutex> lock(mu);
        if (finished.wait_for(lock, std::chrono::duration<double>(limit), [&] { return done; })) return;
        stopped = true;
        try {
          active = desktop_activity();
        } catch (const std::exception& e) {
          active = {std::string("pg_stat_activity: ") + e.what()};
        }
        for (pid_t pid : processes_running(o_.stagesync, config)) kill(pid, SIGINT);
      });
    }
    auto end_watchdog = [&] {
      {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
      }
      finished.notify_all();
      if (watchdog.joinable()) watchdog.join();
    };
    auto start = Clock::now();
    Measured m;
    try {
      m.run = run_child(all, target_.directory() + "/" + log_name + ".out");
    } catch (const std::runtime_error&) {
      end_watchdog();
      if (!stopped) throw;
      m.run.seconds = since(start);
      m.stopped = true;
    }
    end_watchdog();
    m.active_at_stop = active;
    std::this_thread::sleep_for(std::chrono::milliseconds(rtt_ms_ / 2 + 20));  // a closing client's last bytes
    m.link = {proxy_.round_trips(), proxy_.bytes_up(), proxy_.bytes_down(), proxy_.connections()};
    return m;
  }

  // --- 1. latency ---

  // A job of the latency desktop with a single row in jobshead (its client_id lookup is unambiguous).
  void choose_job() {
    pg::Connection desktop = connect(desktop_, "latency_desktop", kApp);
    job_ = desktop
               .exec(
                   "SELECT job_id FROM jobshead WHERE job_id IS NOT NULL GROUP BY job_id HAVING count(*) = 1 "
                   "ORDER BY job_id OFFSET 100 LIMIT 1")
               .int64(0, 0);
  }

  // Per rate, a follow child into a fresh target `db`: latencies of --seconds of writes at that rate.
  std::vector<LatencyResult> latency(const std::string& config, const std::string& db) {
    std::vector<LatencyResult> out;
    fresh_target(db);
    checkpoint({&desktop_, &target_}, kApp);
    for (int rate : o_.rates) {
      std::string log =
          target_.directory() + "/follow-" + std::to_string(rtt_ms_) + "-" + std::to_string(rate) + ".out";
      BackgroundChild follow({o_.stagesync, "follow", "--config", config, "--interval", fixed(o_.interval, 3)}, log);
      pg::Connection writer = connect(desktop_, "latency_desktop", std::string(kApp) + " writer");
      pg::Connection watcher = connect(target_, db, std::string(kApp) + " watcher");
      // Started: the first full sync committed (the target has tasks), then one write seen through the stream.
      wait_for(follow, log, 600s, [&] { return watcher.exec("SELECT count(*) FROM jobtasks").int64(0, 0) > 0; });
      write(writer, ++seq_);
      wait_for(follow, log, 60s, [&] { return visible(watcher) >= seq_; });

      LatencyResult r;
      r.rtt = rtt_ms_;
      r.rate = rate;
      auto count = static_cast<size_t>(std::llround(o_.seconds * rate));
      int64_t first = seq_ + 1;
      std::vector<Clock::time_point> committed(count), seen(count);
      std::vector<bool> was_seen(count, false);
      std::atomic<int64_t> written{0};  // transactions committed so far
      std::atomic<bool> writer_done{false};
      std::string writer_error;  // read after the join
      std::atomic<bool> writer_failed{false};
      std::thread writer_thread([&] {
        try {
          auto start = Clock::now();
          auto period = std::chrono::duration<double>(1.0 / rate);
          for (size_t i = 0; i < count; ++i) {
            auto due = start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
            std::this_thread::sleep_until(due);
            write(writer, first + static_cast<int64_t>(i));
            committed[i] = Clock::now();
            r.writer_late_ms =
                std::max(r.writer_late_ms, std::chrono::duration<double, std::milli>(committed[i] - due).count());
            written = static_cast<int64_t>(i + 1);
          }
        } catch (const std::exception& e) {
          writer_error = e.what();
          writer_failed = true;
        }
        writer_done = true;
      });
      // The watcher: this thread.
      int64_t max_seen = first - 1, last = first + static_cast<int64_t>(count) - 1;
      Clock::time_point give_up{};
      while (max_seen < last) {
        int64_t v = visible(watcher);
        auto now = Clock::now();
        for (int64_t s = std::max(max_seen + 1, first); s <= std::min(v, last); ++s) {
          seen[static_cast<size_t>(s - first)] = now;
          was_seen[static_cast<size_t>(s - first)] = true;
        }
        max_seen = std::max(max_seen, v);
        if (writer_done) {
          if (give_up == Clock::time_point{}) give_up = now + 60s;  // the follower's last batches
          if (now > give_up || writer_failed) break;
        }
        if (!follow.running()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(o_.poll_ms));
      }
      writer_thread.join();
      if (!writer_error.empty()) throw std::runtime_error("writer: " + writer_error);
      seq_ = first + written - 1;
      r.committed = written;
      for (size_t i = 0; i < static_cast<size_t>(written); ++i) {
        if (was_seen[i]) {
          r.ms.push_back(std::chrono::duration<double, std::milli>(seen[i] - committed[i]).count());
        } else {
          ++r.not_seen;
        }
      }
      std::sort(r.ms.begin(), r.ms.end());
      r.follow_rss_kb = follow.peak_rss_kb();
      bool died = !follow.running();
      follow.stop(SIGINT, 30);
      if (died) throw std::runtime_error("stagesync follow stopped during the measurement:\n" + file_text(log));
      r.log = read_follow_log(log);
      r.log.transactions -= 1;  // the warm-up write
      out.push_back(std::move(r));
    }
    stagesync({"follow", "--uninstall", "--config", config}, "follow-uninstall");
    return out;
  }

  // --- 2. capture ---

  // The demo's change batch and 1% of the big tables deleted on the capture desktop (each statement its
  // own transaction, as an application would); returns a description of what changed.
  std::string change_capture_desktop(uint64_t seed) {
    pg::Connection desktop = connect(desktop_, "capture_desktop", kApp);
    static const char* const kTables[] = {"climaster", "cliunimaster", "jobshead", "jobtasks"};
    int64_t before = 0;
    for (const char* t : kTables) before += desktop.exec(std::string("SELECT count(*) FROM ") + t).int64(0, 0);
    int64_t xid = desktop.exec("SELECT txid_current()").int64(0, 0);
    for (const auto& sql : demo::desktop_changes_sql(seed)) desktop.exec(sql);
    int64_t deleted = 0;
    for (const char* t : kTables) {
      std::string table = t;
      deleted += desktop
                     .exec("WITH d AS (DELETE FROM " + table + " WHERE ctid IN (SELECT ctid FROM " + table +
                           " TABLESAMPLE BERNOULLI (1) REPEATABLE (" + std::to_string(seed % 1000) +
                           ")) RETURNING 1) SELECT count(*) FROM d")
                     .int64(0, 0);
    }
    int64_t written = 0;  // rows inserted or updated by the change batch (still there)
    for (const char* t : kTables) {
      written += desktop
                     .exec(std::string("SELECT count(*) FROM ") + t + " WHERE xmin::text::bigint > " +
                           std::to_string(xid % (int64_t{1} << 32)))
                     .int64(0, 0);
    }
    desktop.exec("VACUUM ANALYZE");
    return std::to_string(written) + " rows inserted or updated and " + std::to_string(deleted) +
           " deleted in climaster, cliunimaster, jobshead and jobtasks (" + std::to_string(before) +
           " rows before; the demo's change batch also touches taskchecklist and the reminders)";
  }

  // Statements running on the desktop for stagesync now: "<seconds> s  <first 300 characters>".
  std::vector<std::string> desktop_activity() const {
    pg::Connection c = connect(desktop_, "postgres", kApp);
    pg::Result r = c.exec(
        "SELECT round(extract(epoch FROM now() - query_start)::numeric, 1)::text, "
        "pg_catalog.regexp_replace(left(query, 400), '\\s+', ' ', 'g') FROM "
        "pg_catalog.pg_stat_activity WHERE state = 'active' AND application_name LIKE 'stagesync%' ORDER BY "
        "query_start");
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0) + " s  " + r.text(i, 1));
    return out;
  }

  std::uintmax_t desktop_log_size() const { return std::filesystem::file_size(desktop_.directory() + "/server.log"); }

  // Statements the desktop logged after `mark`, slowest first.
  std::vector<SlowStatement> slow_since(std::uintmax_t mark) const {
    static const std::regex duration(R"(duration: ([0-9.]+) ms  (?:statement|execute [^:]*): (.*))");
    std::vector<SlowStatement> out;
    std::ifstream in(desktop_.directory() + "/server.log");
    in.seekg(static_cast<std::streamoff>(mark));
    std::smatch m;
    for (std::string line; std::getline(in, line);) {
      std::string head = line.substr(0, 400);
      if (std::regex_search(head, m, duration)) out.push_back({std::stod(m[1].str()), m[2].str()});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
    return out;
  }

  // `stagesync verify` of a configuration: "equal", or why not.
  std::string verify(const std::string& config, const std::string& name) {
    try {
      stagesync({"verify", "--config", config}, "verify-" + name);
      return "equal";
    } catch (const std::runtime_error& e) {
      std::string why = e.what();
      return "NOT EQUAL (" + why.substr(0, 600) + ")";
    }
  }

 private:
  void write(pg::Connection& writer, int64_t seq) {
    writer.exec("INSERT INTO jobtasks (jt_id, job_id, task_id, staff_id, task_status, task_date, task_notes) VALUES (" +
                std::to_string(10000000 + seq) + ", " + std::to_string(job_) + ", " + std::to_string(kTaskBase + seq) +
                ", 1, 'Not Started', date '2025-03-01', 'follow_bench " + std::to_string(seq) + "')");
  }

  int64_t visible(pg::Connection& watcher) const {
    return watcher
        .exec("SELECT coalesce(max(task_id), " + std::to_string(kTaskBase) + ") - " + std::to_string(kTaskBase) +
              " FROM jobtasks WHERE job_id = " + std::to_string(job_) + " AND task_id > " + std::to_string(kTaskBase))
        .int64(0, 0);
  }

  template <class Done>
  void wait_for(BackgroundChild& follow, const std::string& log, std::chrono::seconds limit, Done done) {
    auto deadline = Clock::now() + limit;
    while (!done()) {
      if (!follow.running()) throw std::runtime_error("stagesync follow exited:\n" + file_text(log));
      if (Clock::now() > deadline)
        throw std::runtime_error("stagesync follow did not get there in time:\n" + file_text(log));
      std::this_thread::sleep_for(20ms);
    }
  }

  Options o_;
  cluster::LocalCluster desktop_{"stagesync-followbench-src"};
  cluster::LocalCluster target_{"stagesync-followbench-tgt"};
  testing::TcpProxy proxy_;
  int rtt_ms_ = 0;
  int64_t job_ = 0;
  int64_t seq_ = 0;
  std::string server_version_;
};

std::string mb(int64_t bytes) { return bytes < 0 ? "-" : fixed(static_cast<double>(bytes) / 1e6, 2); }
std::string link_name(int rtt) {
  return rtt == 0 ? "0 ms (proxy without delay)"
                  : std::to_string(rtt) + " ms round trip (" + std::to_string(rtt / 2) + " ms each way)";
}

void print_latency(const std::vector<LatencyResult>& results, const Options& o) {
  std::vector<std::vector<std::string>> table = {{"link to the target", "tx/s", "committed", "applied (follow's log)",
                                                  "batches", "p50 ms", "p95 ms", "p99 ms", "max ms", "not seen",
                                                  "writer late max ms", "follow peak RSS MB"}};
  for (const auto& r : results) {
    table.push_back({link_name(r.rtt), std::to_string(r.rate), std::to_string(r.committed),
                     std::to_string(r.log.transactions), std::to_string(r.log.batches), fixed(percentile(r.ms, 50), 0),
                     fixed(percentile(r.ms, 95), 0), fixed(percentile(r.ms, 99), 0),
                     fixed(r.ms.empty() ? 0 : r.ms.back(), 0), std::to_string(r.not_seen), fixed(r.writer_late_ms, 1),
                     fixed(static_cast<double>(r.follow_rss_kb) / 1024, 1)});
  }
  print_table(table, o.markdown);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  if (access(o.stagesync.c_str(), X_OK) != 0)
    usage("no executable stagesync at " + o.stagesync + " (use --stagesync PATH)");
  const std::string para = o.markdown ? "\n" : "";
  try {
    std::cout << "follow_bench: " << std::thread::hardware_concurrency() << " CPUs, load average " << load_average()
              << " at the start\n";
    Bench bench(o);
    std::cout << "PostgreSQL " << bench.server_version() << ", desktop wal_level = logical\n" << para;
    if (o.keep) std::cout << "servers kept: " << bench.servers() << "\n" << para;
    bool all_met = true;

    if (o.latency) {
      std::cerr << "latency: generating scale " << o.latency_scale << "...\n";
      double gen = bench.make_desktop("latency_desktop", o.latency_scale);
      bench.choose_job();
      std::string config = bench.config("latency_desktop", "follow_cloud");
      std::vector<LatencyResult> results;
      std::string load_before = load_average();
      for (int rtt : o.rtt_ms) {
        bench.set_rtt(rtt);
        std::cerr << "latency: RTT " << rtt << " ms...\n";
        for (auto& r : bench.latency(config, "follow_cloud")) results.push_back(std::move(r));
      }
      std::cout << "## 1. Commit-to-cloud latency\n"
                << para << "desktop: reference data at scale " << o.latency_scale << " (generated in " << fixed(gen, 1)
                << " s); `stagesync follow --interval " << fixed(o.interval, 3)
                << "` running for each rate; each transaction one autocommit INSERT of a jobtasks row; " << o.seconds
                << " s per rate; watcher poll every " << o.poll_ms << " ms (included in the latency); load average "
                << load_before << " before, " << load_average() << " after\n"
                << para;
      print_latency(results, o);
      for (const auto& r : results) {
        if (r.rate < 200) continue;
        bool met = r.not_seen == 0 && percentile(r.ms, 95) < 2000;
        all_met = all_met && met;
        std::cout << para << "bar (p95 < 2 s at 200 tx/s), " << link_name(r.rtt) << ": p95 "
                  << fixed(percentile(r.ms, 95), 0) << " ms: " << (met ? "met" : "MISSED") << "\n";
      }
      std::cout << para;
    }

    if (o.capture) {
      std::cerr << "capture: generating scale " << o.scale << "...\n";
      double gen = bench.make_desktop("capture_desktop", o.scale);
      std::string config_a = bench.config("capture_desktop", "capture_a");
      std::string config_b = bench.config("capture_desktop", "capture_b");
      if (o.identity_full) std::ofstream(config_a, std::ios::app) << "follow: { replica_identity: full }\n";
      std::cout << "## 2. capture: logical against the full sync and the digest method\n"
                << para << "desktop: reference data at scale " << o.scale << " (generated in " << fixed(gen, 1)
                << " s); target A by `follow --once`, target B by `sync`; the desktop's replica identity: "
                << (o.identity_full ? "FULL (the opt-in, applied by `follow --apply-replica-identity`)"
                                    : "default (its tables have no primary key: deletes carry no old key)")
                << "\n"
                << para;
      uint64_t seed = 1000;
      for (int round = 0; round < o.repeat; ++round) {
        for (int rtt : o.rtt_ms) {
          bench.set_rtt(rtt);
          std::string load_before = load_average();
          std::cerr << "capture: RTT " << rtt << " ms, round " << round + 1 << ": first follow --once (A)"
                    << std::flush;
          bench.fresh_target("capture_a");
          bench.fresh_target("capture_b");
          if (o.identity_full) bench.stagesync({"follow", "--apply-replica-identity", "--config", config_a}, "a-identity");
          bench.settle_targets({});
          Measured first = bench.stagesync({"follow", "--once", "--config", config_a}, "a-first");
          std::cerr << ", full sync (B)" << std::flush;
          bench.settle_targets({});
          Measured full = bench.stagesync({"sync", "--mode", "full", "--config", config_b}, "b-full");
          std::cerr << ", changes" << std::flush;
          std::string changed = bench.change_capture_desktop(seed++);
          bench.settle_targets({"capture_a", "capture_b"});
          std::cerr << ", digest incremental (B)" << std::flush;
          auto mark = bench.desktop_log_size();
          Measured digest =
              bench.stagesync({"sync", "--mode", "incremental", "--config", config_b}, "b-incremental", o.limit);
          auto digest_slow = bench.slow_since(mark);
          std::cerr << ", follow --once (A)" << std::flush;
          bench.settle_targets({});
          mark = bench.desktop_log_size();
          Measured logical = bench.stagesync({"follow", "--once", "--config", config_a}, "a-once", o.limit);
          auto logical_slow = bench.slow_since(mark);
          std::cerr << ", verify\n";
          const std::string not_run = "not run (its change run was stopped)";
          std::string verify_a = logical.stopped ? not_run : bench.verify(config_a, "a");
          std::string verify_b = digest.stopped ? not_run : bench.verify(config_b, "b");
          bench.stagesync({"follow", "--uninstall", "--config", config_a}, "a-uninstall");
          double base = full.run.seconds;
          std::vector<std::vector<std::string>> table = {
              {"run", "wall s", "% of the full sync", "round trips", "MB up", "peak RSS MB"}};
          auto row = [&](const std::string& name, const Measured& m) {
            std::string more = m.stopped ? "> " : "";
            table.push_back({name + (m.stopped ? " (stopped at --limit)" : ""), more + fixed(m.run.seconds, 2),
                             more + fixed(100 * m.run.seconds / base, 1),
                             m.stopped ? "-" : std::to_string(m.link.round_trips),
                             m.stopped ? "-" : mb(m.link.bytes_up),
                             m.stopped ? "-" : fixed(static_cast<double>(m.run.max_rss_kb) / 1024, 1)});
          };
          row("A: first `follow --once` (slot + full sync in its snapshot)", first);
          row("B: `sync --mode full` (the full sync)", full);
          row("B: `sync --mode incremental` (digest method)", digest);
          row("A: `follow --once` (capture: logical)", logical);
          std::cout << "round " << round + 1 << ", link " << link_name(rtt) << ", load average " << load_before
                    << " before, " << load_average() << " after; changes: " << changed << "\n"
                    << para;
          print_table(table, o.markdown);
          bool met = !logical.stopped && 100 * logical.run.seconds / base < 15;
          all_met = all_met && met && verify_a == "equal" && verify_b == "equal";
          std::cout << para << "bar (logical under 15% of the full sync): " << (logical.stopped ? "> " : "")
                    << fixed(100 * logical.run.seconds / base, 1) << "%: " << (met ? "met" : "MISSED")
                    << "; digest method " << (digest.stopped ? "> " : "") << fixed(100 * digest.run.seconds / base, 1)
                    << "%\n"
                    << "verify A (follow): " << verify_a << "; verify B (sync): " << verify_b << "\n";
          for (const auto& [name, m] :
               {std::pair{"digest incremental", &digest}, std::pair{"follow --once", &logical}}) {
            if (m->active_at_stop.empty()) continue;
            std::cout << para << "running on the desktop when the " << name << " was stopped:\n" << para;
            for (const auto& a : m->active_at_stop) std::cout << (o.markdown ? "- `" + a + "`" : "  " + a) << "\n";
          }
          for (const auto& [name, slow] :
               {std::pair{"digest incremental", &digest_slow}, std::pair{"follow --once", &logical_slow}}) {
            if (slow->empty()) continue;
            std::cout << para << "desktop statements over " << o.desktop_log_ms << " ms during the " << name << ":\n"
                      << para;
            for (size_t i = 0; i < slow->size() && i < 5; ++i) {
              std::string sql = (*slow)[i].sql.substr(0, 300);
              std::cout << (o.markdown ? "- " : "  ") << fixed((*slow)[i].ms / 1000, 2) << " s  "
                        << (o.markdown ? "`" + sql + "`" : sql) << "\n";
            }
          }
          std::cout << para;
        }
      }
    }
    std::cout << "load average at the end " << load_average() << "\n";
    return all_met ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "\nfollow_bench failed: " << e.what() << "\n";
    return 1;
  }
}
