// sqlite_bench: the SQLite source against the PostgreSQL source on the same
// reference data (issue 14; docs/performance.md, "SQLite source").
//
// Two throwaway servers: the source server holds the reference desktop
// (demo::desktop_data_sql at --scale, seed 42), which is also written into a
// SQLite file (demo::write_sqlite_desktop, --journal, WAL by default); the
// target server holds the cloud schema. Every connection to the target goes
// through tests/support/tcp_proxy, which delays it by each --rtt-ms (half each
// way; 0: forwarded without delay) and counts round trips and bytes. The
// source stays direct (the desktop is on the office LAN, or a local file).
//
// For each RTT and each of --repeat rounds, for each source (PostgreSQL
// first, then SQLite), the real stagesync binary runs as a child (wall time,
// peak RSS from wait4's ru_maxrss):
//   full sync                 `sync` into a freshly created target (no mobile rows)
//   incremental, no change    `sync --mode incremental` right after
//   incremental, ~1% changed  after the demo's change batch on that source
//                             (demo::desktop_changes_sql / sqlite_desktop_changes,
//                             a new seed each round: the changes accumulate)
// The target is VACUUM ANALYZEd and both servers checkpointed before each
// incremental run (the state a later, scheduled run finds). The SQLite
// source's fingerprint cache lives next to its configuration; a fresh target
// makes each round's full sync rebuild it.
//
// --no-postgres-changed leaves out the PostgreSQL source's ~1% changed run
// (at scale 10 its fetch from the source ran for minutes: docs/performance.md).
// --perf DIR runs every stagesync child under `perf record -g` (DIR/<n>-<source>-<run>.data),
// for `perf report`: where the time goes (its times are then perf's, not the bare run's).
//
//   sqlite_bench --scale N [--repeat R] [--rtt-ms 0,50] [--journal wal|delete]
//                [--stagesync PATH] [--markdown] [--perf DIR] [--no-postgres-changed]
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "cluster/local_cluster.h"
#include "demo/reference_data.h"
#include "demo/sqlite_desktop.h"
#include "pg/connection.h"
#include "support/tcp_proxy.h"

namespace {

using namespace stagesync;
using namespace stagesync::bench;

struct Options {
  double scale = 0;
  int repeat = 1;
  std::vector<int> rtt_ms = {0, 50};
  std::string journal = "wal";
  std::string stagesync;
  bool markdown = false;
  std::string perf;  // --perf DIR
  bool postgres_changed = true;
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "sqlite_bench: " << problem << "\n";
  std::cerr << "usage: sqlite_bench --scale N [--repeat R] [--rtt-ms 0,50] [--journal wal|delete]\n"
               "                    [--stagesync PATH] [--markdown] [--perf DIR] [--no-postgres-changed]\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  o.stagesync = default_stagesync();
  Args args(argc, argv, [](const std::string& problem) { usage(problem); });
  for (std::string a; args.next(a);) {
    auto value = [&] { return args.value(); };
    try {
      if (a == "--scale") {
        o.scale = std::stod(value());
      } else if (a == "--repeat") {
        o.repeat = std::stoi(value());
      } else if (a == "--rtt-ms") {
        o.rtt_ms.clear();
        std::stringstream list(value());
        for (std::string s; std::getline(list, s, ',');) o.rtt_ms.push_back(std::stoi(s));
      } else if (a == "--journal") {
        o.journal = value();
      } else if (a == "--stagesync") {
        o.stagesync = value();
      } else if (a == "--no-postgres-changed") {
        o.postgres_changed = false;
      } else if (a == "--perf") {
        o.perf = value();
      } else if (a == "--markdown") {
        o.markdown = true;
      } else {
        usage(a == "--help" || a == "-h" ? "" : "unknown argument " + a);
      }
    } catch (const std::logic_error&) {
      usage("bad value for " + a);
    }
  }
  if (o.scale <= 0) usage("--scale N (N > 0) is required");
  if (o.repeat < 1) usage("--repeat must be at least 1");
  if (o.rtt_ms.empty() || *std::min_element(o.rtt_ms.begin(), o.rtt_ms.end()) < 0) usage("--rtt-ms: 0 or more");
  if (o.journal != "wal" && o.journal != "delete") usage("--journal is wal or delete");
  return o;
}

pg::Connection connect(const cluster::LocalCluster& server, const std::string& db) {
  return bench::connect(server, db, "sqlite_bench");
}

// Runs `statements` in one transaction on the SQLite file at `path`, as the
// desktop application would.
void change_sqlite(const std::string& path, const std::vector<std::string>& statements) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path);
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> close(db, sqlite3_close);
  std::vector<std::string> all = {"BEGIN"};
  all.insert(all.end(), statements.begin(), statements.end());
  all.push_back("COMMIT");
  for (const auto& sql : all) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string why = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      throw std::runtime_error(path + ": " + why + " in " + sql.substr(0, 200));
    }
  }
}

enum Source { kPostgres, kSqlite };
enum Step { kFull, kNoChange, kChanged };
const char* const kSourceNames[] = {"PostgreSQL", "SQLite"};
const char* const kStepNames[] = {"full sync", "incremental, no change", "incremental, ~1% changed"};

// One measured run.
struct Measured {
  ChildRun run;
  LinkUse link;
};

class Bench {
 public:
  explicit Bench(const Options& o) : o_(o), proxy_(target_.port()) {
    auto t0 = Clock::now();
    source_.create_database("desktop");
    target_.create_database("cloud");
    sqlite_path_ = target_.directory() + "/desktop.sqlite";
    {
      pg::Connection desktop = connect(source_, "desktop");
      for (const auto& sql : demo::desktop_schema_sql()) desktop.exec(sql);
      for (const auto& sql : demo::desktop_data_sql(o.scale, 42)) desktop.exec(sql);
      generate_seconds_ = since(t0);
      t0 = Clock::now();
      for (const auto& [table, n] : demo::write_sqlite_desktop(desktop, sqlite_path_, o.journal)) source_rows_ += n;
      write_seconds_ = since(t0);
      server_version_ = desktop.exec("SHOW server_version").text(0, 0);
    }
    std::string via_proxy = "postgresql://postgres@127.0.0.1:" + std::to_string(proxy_.port()) + "/cloud";
    config_[kPostgres] = target_.directory() + "/postgres-source.yaml";
    std::ofstream(config_[kPostgres]) << demo::demo_config_yaml(source_.url("desktop"), via_proxy);
    config_[kSqlite] = target_.directory() + "/sqlite-source.yaml";
    std::ofstream(config_[kSqlite]) << demo::sqlite_demo_config(via_proxy, sqlite_path_);
  }

  double generate_seconds() const { return generate_seconds_; }
  double write_seconds() const { return write_seconds_; }
  int64_t source_rows() const { return source_rows_; }
  int64_t sqlite_bytes() const { return static_cast<int64_t>(std::filesystem::file_size(sqlite_path_)); }
  const std::string& server_version() const { return server_version_; }

  // Connections accepted from now on cross a link of `rtt_ms` round trip.
  void set_rtt(int rtt_ms) {
    rtt_ms_ = rtt_ms;
    proxy_.set_delay(std::chrono::milliseconds(rtt_ms / 2));
  }

  // A freshly created target database with the cloud schema and no mobile rows.
  void fresh_target() {
    fresh_cloud(target_, "cloud", "sqlite_bench");
    checkpoint();
  }

  // The state a later, scheduled sync finds: statistics and visibility map up to date, nothing dirty.
  void settle_target() {
    connect(target_, "cloud").exec("VACUUM ANALYZE");
    checkpoint();
  }

  // The demo's change batch (about 1% of the rows) on `source`.
  void change(Source source, uint64_t seed) {
    if (source == kSqlite) {
      change_sqlite(sqlite_path_, demo::sqlite_desktop_changes(seed));
      return;
    }
    pg::Connection desktop = connect(source_, "desktop");
    for (const auto& sql : demo::desktop_changes_sql(seed)) desktop.exec(sql);
    desktop.exec("VACUUM ANALYZE");
  }

  // `stagesync sync` of `source` with `extra` arguments, and what it sent to the target.
  Measured sync(Source source, Step step, const std::vector<std::string>& extra) {
    proxy_.reset_counters();
    std::vector<std::string> args;
    if (!o_.perf.empty()) {
      std::string name = std::to_string(++perf_runs_) + "-" + kSourceNames[source] + "-" + kStepNames[step];
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
      args = {"/usr/bin/perf", "record", "-q", "-F", "499", "-g", "-o", o_.perf + "/" + name + ".data", "--"};
    }
    args.insert(args.end(), {o_.stagesync, "sync", "--config", config_[source]});
    args.insert(args.end(), extra.begin(), extra.end());
    Measured m{run_child(args, target_.directory() + "/stagesync.out"), {}};
    // The last bytes in flight (a closing client's Terminate) arrive first.
    std::this_thread::sleep_for(std::chrono::milliseconds(rtt_ms_ / 2 + 20));
    m.link = {proxy_.round_trips(), proxy_.bytes_up(), proxy_.bytes_down(), proxy_.connections()};
    return m;
  }

  // Rows in the target's tables (every table of its public schema).
  int64_t target_rows() {
    pg::Connection cloud = connect(target_, "cloud");
    pg::Result tables = cloud.exec(
        "SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public' AND "
        "table_type = 'BASE TABLE'");
    int64_t n = 0;
    for (int i = 0; i < tables.rows(); ++i) n += cloud.exec("SELECT count(*) FROM " + tables.text(i, 0)).int64(0, 0);
    return n;
  }

 private:
  void checkpoint() { bench::checkpoint({&source_, &target_}, "sqlite_bench"); }

  Options o_;
  cluster::LocalCluster source_{"stagesync-sqlitebench-src"};
  cluster::LocalCluster target_{"stagesync-sqlitebench-tgt"};
  testing::TcpProxy proxy_;
  int rtt_ms_ = 0;
  int perf_runs_ = 0;
  std::string sqlite_path_;
  std::string config_[2];
  double generate_seconds_ = 0, write_seconds_ = 0;
  int64_t source_rows_ = 0;
  std::string server_version_;
};

// The runs of one (source, step) at one RTT.
struct Series {
  std::vector<double> seconds;
  std::vector<double> round_trips, mb_up;
  long max_rss_kb = 0;
  void add(const Measured& m) {
    seconds.push_back(m.run.seconds);
    round_trips.push_back(static_cast<double>(m.link.round_trips));
    mb_up.push_back(static_cast<double>(m.link.bytes_up) / 1e6);
    max_rss_kb = std::max(max_rss_kb, m.run.max_rss_kb);
  }
};

void print_rtt(int rtt, Series (&s)[2][3], bool markdown) {
  std::vector<std::vector<std::string>> table = {{"variant", "wall s (median)", "min..max s", "vs its full sync",
                                                  "round trips", "min..max", "MB up", "peak RSS MB"}};
  for (int src : {kPostgres, kSqlite}) {
    double full = median(s[src][kFull].seconds);
    for (int step : {kFull, kNoChange, kChanged}) {
      const Series& x = s[src][step];
      if (x.seconds.empty()) continue;
      auto [lo, hi] = std::minmax_element(x.seconds.begin(), x.seconds.end());
      auto [rlo, rhi] = std::minmax_element(x.round_trips.begin(), x.round_trips.end());
      double sec = median(x.seconds);
      table.push_back({std::string(kSourceNames[src]) + " " + kStepNames[step], fixed(sec, 2),
                       fixed(*lo, 2) + ".." + fixed(*hi, 2), fixed(sec / full, 3), fixed(median(x.round_trips), 0),
                       fixed(*rlo, 0) + ".." + fixed(*rhi, 0), fixed(median(x.mb_up), 2),
                       fixed(static_cast<double>(x.max_rss_kb) / 1024, 1)});
    }
  }
  std::cout << "RTT " << rtt << " ms to the target" << (rtt == 0 ? " (proxy without delay)" : "") << ":\n";
  if (markdown) std::cout << "\n";
  print_table(table, markdown);
  double ratio = median(s[kSqlite][kFull].seconds) / median(s[kPostgres][kFull].seconds);
  std::cout << (markdown ? "\n" : "") << "SQLite full sync / PostgreSQL full sync: " << fixed(ratio, 2)
            << "x (bar 1.5x); SQLite no change / its full sync: "
            << fixed(100 * median(s[kSqlite][kNoChange].seconds) / median(s[kSqlite][kFull].seconds), 1)
            << "% (bar 10%); peak RSS of SQLite runs: "
            << fixed(static_cast<double>(
                         std::max({s[kSqlite][0].max_rss_kb, s[kSqlite][1].max_rss_kb, s[kSqlite][2].max_rss_kb})) /
                         1024,
                     1)
            << " MB (bar 64 MB)\n";
  if (markdown) std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  if (access(o.stagesync.c_str(), X_OK) != 0) usage("no executable stagesync at " + o.stagesync);
  try {
    std::string load_before = load_average();
    std::cerr << "starting two servers, generating scale " << o.scale << " and writing it as SQLite...\n";
    Bench bench(o);
    std::cerr << "generated in " << fixed(bench.generate_seconds(), 1) << " s, SQLite file (" << o.journal
              << ") written in " << fixed(bench.write_seconds(), 1) << " s: " << bench.source_rows() << " rows, "
              << fixed(static_cast<double>(bench.sqlite_bytes()) / 1e6, 1) << " MB\n";
    uint64_t seed = 1000;
    int64_t rows_after_full[2] = {-1, -1};
    std::vector<std::string> load_after;
    for (int rtt : o.rtt_ms) {
      bench.set_rtt(rtt);
      Series s[2][3];
      for (int r = 0; r < o.repeat; ++r) {
        std::cerr << "RTT " << rtt << " ms, round " << r + 1 << "/" << o.repeat << ":";
        for (Source src : {kPostgres, kSqlite}) {
          std::cerr << " " << kSourceNames[src] << " full" << std::flush;
          bench.fresh_target();
          s[src][kFull].add(bench.sync(src, kFull, {}));
          if (rows_after_full[src] < 0) rows_after_full[src] = bench.target_rows();
          bench.settle_target();
          std::cerr << ", no change" << std::flush;
          s[src][kNoChange].add(bench.sync(src, kNoChange, {"--mode", "incremental"}));
          if (src == kPostgres && !o.postgres_changed) continue;
          std::cerr << ", ~1% changed" << std::flush;
          bench.change(src, seed++);
          bench.settle_target();
          s[src][kChanged].add(bench.sync(src, kChanged, {"--mode", "incremental"}));
          std::cerr << ";";
        }
        std::cerr << "\n";
      }
      load_after.push_back(load_average());
      if (rtt == o.rtt_ms.front()) {
        std::cout << "scale " << o.scale << ", " << bench.source_rows() << " source rows in the SQLite file ("
                  << o.journal << " journal, " << fixed(static_cast<double>(bench.sqlite_bytes()) / 1e6, 1)
                  << " MB), median of " << o.repeat << " run(s), PostgreSQL " << bench.server_version() << ", "
                  << std::thread::hardware_concurrency() << " CPUs\n";
        if (o.markdown) std::cout << "\n";
      }
      print_rtt(rtt, s, o.markdown);
    }
    std::cout << "load average " << load_before << " before, then after each RTT:";
    for (const auto& l : load_after) std::cout << " " << l;
    bool same = rows_after_full[kPostgres] == rows_after_full[kSqlite];
    std::cout << "\nrows in the target after the first full sync: from PostgreSQL " << rows_after_full[kPostgres]
              << ", from SQLite " << rows_after_full[kSqlite] << (same ? " (same)" : " (DIFFERENT)") << "\n";
    return same ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "\nsqlite_bench failed: " << e.what() << "\n";
    return 1;
  }
}
