// sync_bench: times `stagesync sync` against two floors, on two throwaway
// servers (source: database desktop, target: database cloud) holding the demo's
// reference data. Results and how to read them: docs/performance.md.
//
//   physical floor  per table, the plan's source SELECT as binary COPY TO STDOUT
//                   piped into COPY FROM STDIN of an empty table (same column
//                   types, no constraints, no indexes): the raw data movement.
//   safe floor      per table, COPY into a temporary staging table; then in one
//                   transaction DELETE every target table (children first) and
//                   INSERT ... SELECT from staging (parents first) into the real
//                   tables with their keys and foreign keys. The SELECT drops
//                   only what the constraints or the configuration demand (NULL
//                   keys, duplicate keys, skipped orphans) so it keeps the same
//                   rows as stagesync. Measured into an empty target, and once
//                   more over the target it filled (the DELETE then has rows).
//   stagesync       the real binary as a child process: wall time and peak RSS
//                   (wait4's ru_maxrss). Full sync into an empty target, re-sync
//                   with nothing changed, a full sync with --strategy swap, one
//                   with --strategy truncate-first (development target, automatic
//                   backup included), then --mode incremental with no change, after
//                   the demo's change batch (about 1% of the rows updated, some
//                   inserted and deleted) and after deleting 1% of every keyed table.
//
// Every measurement starts from a freshly created target database (no mobile
// rows), so every variant moves the same rows. Each is repeated --repeat times
// and the median is reported. The floors run with jit = off so they stay lower
// bounds (JIT compilation of their large INSERTs costs 0.1-0.3 s at scale 10).
//
// --vacuumed-target adds a stagesync full sync into an empty target whose tables
// were VACUUM ANALYZEd (as after `vacuumdb --analyze`, or after every row was
// deleted and autovacuum ran): the planner then knows the tables are empty.
// --profile adds one extra safe floor and round of stagesync runs (full, re-sync,
// swap, incremental with no change and after a change batch) with
// log_min_duration_statement = 0 and prints their slowest statements.

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "apply/table_sql.h"
#include "cluster/local_cluster.h"
#include "config/config.h"
#include "demo/reference_data.h"
#include "pg/connection.h"
#include "pg/sql.h"
#include "plan/sync_plan.h"
#include "stage/copy_pipe.h"
#include "stage/source_query.h"

extern char** environ;

namespace {

using namespace stagesync;
using Clock = std::chrono::steady_clock;

struct Options {
  double scale = 1;
  int repeat = 1;
  std::string stagesync;
  bool markdown = false;
  bool profile = false;
  bool vacuumed_target = false;
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "sync_bench: " << problem << "\n";
  std::cerr << "usage: sync_bench --scale N [--repeat R] [--stagesync PATH] [--markdown] [--profile]\n"
               "                  [--vacuumed-target]\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  o.stagesync = (std::filesystem::canonical("/proc/self/exe").parent_path().parent_path() / "stagesync").string();
  bool have_scale = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--scale") {
        o.scale = std::stod(value());
        have_scale = true;
      } else if (a == "--repeat") {
        o.repeat = std::stoi(value());
      } else if (a == "--stagesync") {
        o.stagesync = value();
      } else if (a == "--markdown") {
        o.markdown = true;
      } else if (a == "--profile") {
        o.profile = true;
      } else if (a == "--vacuumed-target") {
        o.vacuumed_target = true;
      } else {
        usage(a == "--help" || a == "-h" ? "" : "unknown argument " + a);
      }
    } catch (const std::logic_error&) {
      usage("bad value for " + a);
    }
  }
  if (!have_scale || o.scale <= 0) usage("--scale N (N > 0) is required");
  if (o.repeat < 1) usage("--repeat must be at least 1");
  return o;
}

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

pg::Connection connect(const cluster::LocalCluster& server, const std::string& db) {
  return pg::Connection(pg::Endpoint{server.conninfo(db), "", "sync_bench", 10});
}

pg::Connection connect_floor(const cluster::LocalCluster& server, const std::string& db) {
  pg::Connection c = connect(server, db);
  c.exec("SET jit = off");
  return c;
}

// Streams a table's source rows (the plan's SELECT, cast to the staging types)
// into `into`, which has the staged columns. Returns the rows stored.
int64_t copy_table(pg::Connection& source, pg::Connection& target, const plan::TablePlan& t, const std::string& into) {
  std::vector<std::string> names;
  for (const auto& c : t.columns) names.push_back(c.name);
  return stage::pipe_copy(source, stage::source_copy(t, source), target,
                          "COPY " + into + " (" + pg::column_list(names) + ") FROM STDIN (FORMAT binary)");
}

// "(c1 type1, c2 type2, ...)" with the staging types.
std::string staged_columns_ddl(const plan::TablePlan& t) {
  std::vector<std::string> cols;
  for (const auto& c : t.columns) cols.push_back(pg::ident(c.name) + " " + c.stage_type);
  return "(" + pg::join(cols, ", ") + ")";
}

// The 1-minute load average: other work on the machine skews every number.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "?" : one;
}

struct ChildRun {
  double seconds = 0;
  long max_rss_kb = 0;
};

// One statement from a server log written with log_min_duration_statement = 0.
struct LoggedStatement {
  double ms = 0;
  std::string server;
  std::string sql;
};

// What the servers logged during one profiled run.
struct RunLog {
  std::string name;
  std::vector<LoggedStatement> statements;  // slowest first
  std::vector<std::string> autovacuum_cancels;  // "automatic vacuum of table ..." the run's locks cancelled
};

class Bench {
 public:
  explicit Bench(const Options& o) : o_(o) {
    auto t0 = Clock::now();
    source_.create_database("desktop");
    target_.create_database("cloud");
    {
      pg::Connection desktop = connect(source_, "desktop");
      for (const auto& sql : demo::desktop_schema_sql()) desktop.exec(sql);
      for (const auto& sql : demo::desktop_data_sql(o.scale, 42)) desktop.exec(sql);
    }
    generate_seconds_ = since(t0);
    std::string yaml = demo::demo_config_yaml(source_.url("desktop"), target_.url("cloud"));
    config_path_ = target_.directory() + "/bench.yaml";
    std::ofstream(config_path_) << yaml;
    cfg_ = config::parse_config(yaml, config_path_);
    // The same configuration with the target declared a development database, for truncate-first.
    std::string dev = yaml;
    size_t at = dev.find("target:");
    dev.insert(dev.find('\n', at) + 1, "  environment: development\n");
    dev_config_path_ = target_.directory() + "/bench-development.yaml";
    std::ofstream(dev_config_path_) << dev;
    fresh_target();
    pg::Connection desktop = connect(source_, "desktop");
    pg::Connection cloud = connect(target_, "cloud");
    plan::Resolution r = plan::resolve(cfg_, desktop, cloud, {});
    if (!r.problems.empty()) throw std::runtime_error("the demo configuration does not resolve: " + r.problems.front());
    plan_ = std::move(r.plan);
    server_version_ = cloud.exec("SHOW server_version").text(0, 0);
  }

  // Runs statements on the source database (the incremental variants change it).
  void change_source(const std::vector<std::string>& statements) {
    pg::Connection desktop = connect(source_, "desktop");
    for (const auto& sql : statements) desktop.exec(sql);
    desktop.exec("VACUUM ANALYZE");
  }
  // Deletes about `percent` % of the rows of every keyed table of the plan.
  std::vector<std::string> delete_share(double percent) const {
    std::vector<std::string> out;
    for (size_t i : plan_.selected()) {
      const plan::TablePlan& t = plan_.tables[i];
      if (!t.keyed()) continue;
      out.push_back("DELETE FROM " + t.source.qualified_name() + " WHERE ctid IN (SELECT ctid FROM " +
                    t.source.qualified_name() + " TABLESAMPLE BERNOULLI (" + std::to_string(percent) + ") REPEATABLE (7))");
    }
    return out;
  }
  double generate_seconds() const { return generate_seconds_; }
  const std::string& server_version() const { return server_version_; }
  size_t table_count() const { return plan_.selected().size(); }

  // Drops and recreates the target database with the cloud schema, then
  // checkpoints both servers so no earlier run's dirty pages are flushed
  // during the next measurement.
  void fresh_target() {
    {
      pg::Connection admin = connect(target_, "postgres");
      admin.exec("DROP DATABASE IF EXISTS cloud WITH (FORCE)");
      admin.exec("CREATE DATABASE cloud");
    }
    pg::Connection cloud = connect(target_, "cloud");
    for (const auto& sql : demo::cloud_schema_sql()) cloud.exec(sql);
    checkpoint();
  }

  // The state a later, scheduled sync finds: statistics and visibility map up
  // to date, nothing dirty.
  void settle_target() {
    connect(target_, "cloud").exec("VACUUM ANALYZE");
    checkpoint();
  }

  // Returns seconds; `rows` receives the rows copied.
  double physical_floor(int64_t& rows) {
    fresh_target();
    std::vector<size_t> order = plan_.selected();
    {
      pg::Connection cloud = connect(target_, "cloud");
      for (size_t i : order) cloud.exec("CREATE TABLE " + floor_table(i) + " " + staged_columns_ddl(plan_.tables[i]));
    }
    auto start = Clock::now();
    pg::Connection desktop = connect_floor(source_, "desktop");
    pg::Connection cloud = connect_floor(target_, "cloud");
    desktop.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    rows = 0;
    for (size_t i : order) rows += copy_table(desktop, cloud, plan_.tables[i], floor_table(i));
    desktop.exec("COMMIT");
    return since(start);
  }

  // Returns seconds; `inserted` receives the rows inserted into the target.
  double safe_floor(int64_t& inserted) {
    fresh_target();
    return run_safe_floor(inserted);
  }

  // The safe floor again over the target the previous one filled: its DELETE
  // now removes every row (the counterpart of --strategy swap).
  double safe_floor_again(int64_t& inserted) {
    settle_target();
    return run_safe_floor(inserted);
  }

  // `stagesync sync --config FILE <extra>` into the current target.
  ChildRun stagesync(const std::vector<std::string>& extra, bool development = false) {
    std::vector<std::string> args = {o_.stagesync, "sync", "--config", development ? dev_config_path_ : config_path_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string log = target_.directory() + "/stagesync.out";
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    auto start = Clock::now();
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (rc != 0) throw std::runtime_error("cannot start " + o_.stagesync + ": " + std::strerror(rc));
    int status = 0;
    rusage usage{};
    while (wait4(pid, &status, 0, &usage) < 0) {
      if (errno != EINTR) throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
    }
    ChildRun run{since(start), usage.ru_maxrss};
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::ifstream in(log);
      std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      throw std::runtime_error("stagesync sync failed (wait status " + std::to_string(status) + "):\n" + output);
    }
    return run;
  }

  // Rows in the synced target tables.
  int64_t target_rows() {
    pg::Connection cloud = connect(target_, "cloud");
    int64_t n = 0;
    for (size_t i : plan_.selected()) {
      n += cloud.exec("SELECT count(*) FROM " + plan_.tables[i].target.qualified_name()).int64(0, 0);
    }
    return n;
  }

  // One safe floor and one round of stagesync runs (full sync, re-sync, swap,
  // incremental with no change and after a change batch) with every statement
  // logged on both servers.
  std::vector<RunLog> profile() {
    std::vector<RunLog> out;
    log_statements(true);
    fresh_target();
    auto marks = log_sizes();
    int64_t rows = 0;
    run_safe_floor(rows);
    out.push_back(logged_since("safe floor", marks));
    fresh_target();
    marks = log_sizes();
    stagesync({});
    out.push_back(logged_since("stagesync full sync", marks));
    settle_target();
    marks = log_sizes();
    stagesync({});
    out.push_back(logged_since("stagesync re-sync, no change", marks));
    settle_target();
    marks = log_sizes();
    stagesync({"--strategy", "swap"});
    out.push_back(logged_since("stagesync full sync, swap", marks));
    settle_target();
    marks = log_sizes();
    stagesync({"--mode", "incremental"});
    out.push_back(logged_since("stagesync incremental, no change", marks));
    change_source(demo::desktop_changes_sql(2000));
    settle_target();
    marks = log_sizes();
    stagesync({"--mode", "incremental"});
    out.push_back(logged_since("stagesync incremental, ~1% changed", marks));
    log_statements(false);
    return out;
  }

 private:
  std::string floor_table(size_t i) const { return pg::ident("floor_" + plan_.tables[i].target_name); }
  std::string temp_table(size_t i) const { return pg::qualified("pg_temp", "stage_" + plan_.tables[i].target_name); }

  void checkpoint() {
    connect(source_, "postgres").exec("CHECKPOINT");
    connect(target_, "postgres").exec("CHECKPOINT");
  }

  double run_safe_floor(int64_t& inserted) {
    std::vector<size_t> order = plan_.selected();
    auto start = Clock::now();
    pg::Connection desktop = connect_floor(source_, "desktop");
    pg::Connection cloud = connect_floor(target_, "cloud");
    desktop.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    for (size_t i : order) {
      cloud.exec("CREATE TEMP TABLE " + temp_table(i) + " " + staged_columns_ddl(plan_.tables[i]));
      copy_table(desktop, cloud, plan_.tables[i], temp_table(i));
    }
    desktop.exec("COMMIT");
    cloud.exec("BEGIN");
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      cloud.exec("DELETE FROM " + plan_.tables[*it].target.qualified_name());
    }
    inserted = 0;
    for (size_t i : order) {
      pg::Params params;
      std::string sql = safe_insert(plan_.tables[i], temp_table(i), params);
      inserted += cloud.exec(sql, params).affected();
    }
    cloud.exec("COMMIT");
    return since(start);
  }

  // INSERT ... SELECT from staging with the target's own column expressions
  // (apply::TableSql), keeping what the target's constraints and the
  // configuration allow: non-NULL keys, one row per key where duplicates are
  // expected (`duplicates: keep newest`; here the first one wins), and for
  // `on_orphan: skip` references only rows whose parent was inserted.
  std::string safe_insert(const plan::TablePlan& t, const std::string& staging, pg::Params& params) const {
    apply::TableSql sql(t, staging);
    std::vector<std::string> keep;
    for (const auto& k : t.key) keep.push_back("s." + pg::ident(k) + " IS NOT NULL");
    for (const auto& ref : t.references) {
      if (ref.policy != config::OrphanPolicy::Skip) continue;
      std::vector<std::string> some_null, same;
      for (size_t k = 0; k < ref.columns.size(); ++k) {
        some_null.push_back("s." + pg::ident(ref.columns[k]) + " IS NULL");
        same.push_back("p." + pg::ident(ref.parent_columns[k]) + " = s." + pg::ident(ref.columns[k]));
      }
      keep.push_back("(" + pg::join(some_null, " OR ") + " OR EXISTS (SELECT 1 FROM " +
                     plan_.tables[ref.parent].target.qualified_name() + " p WHERE " + pg::join(same, " AND ") + "))");
    }
    std::string out = "INSERT INTO " + sql.target() + " (" + pg::column_list(sql.insert_columns()) + ") SELECT " +
                      sql.insert_select(params) + " FROM " + staging + " s";
    if (!keep.empty()) out += " WHERE " + pg::join(keep, " AND ");
    if (t.keyed() && t.duplicates.keep_newest) out += " ON CONFLICT (" + pg::column_list(t.key) + ") DO NOTHING";
    return out;
  }

  void log_statements(bool on) {
    for (const cluster::LocalCluster* s : {&source_, &target_}) {
      pg::Connection admin = connect(*s, "postgres");
      admin.exec(on ? "ALTER SYSTEM SET log_min_duration_statement = 0" : "ALTER SYSTEM RESET log_min_duration_statement");
      admin.exec("SELECT pg_reload_conf()");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the reload is asynchronous
  }

  std::vector<std::uintmax_t> log_sizes() const {
    return {std::filesystem::file_size(source_.directory() + "/server.log"),
            std::filesystem::file_size(target_.directory() + "/server.log")};
  }

  // Statements both servers logged after `marks`, slowest first, shortened
  // for reading (see shorten()). Also lists autovacuum workers cancelled by a
  // lock request: the request waited deadlock_timeout (1 s) before that.
  RunLog logged_since(const std::string& name, const std::vector<std::uintmax_t>& marks) const {
    static const std::regex entry(R"(^\d{4}-\d\d-\d\d )");
    static const std::regex duration(R"(duration: ([0-9.]+) ms  (?:statement|execute [^:]*): (.*))");
    RunLog out{name, {}, {}};
    const cluster::LocalCluster* servers[] = {&source_, &target_};
    for (int k = 0; k < 2; ++k) {
      std::ifstream in(servers[k]->directory() + "/server.log");
      in.seekg(static_cast<std::streamoff>(marks[k]));
      std::string line;
      std::smatch m;
      bool statement = false;  // statements may span lines
      while (std::getline(in, line)) {
        // std::regex recurses per character: a statement of 100 kB (a chunk
        // of keys) would overflow the stack. The prefix decides; the rest is text.
        std::string head = line.substr(0, 300);
        if (std::regex_search(head, entry)) {
          statement = std::regex_search(head, m, duration);
          if (statement) {
            out.statements.push_back({std::stod(m[1].str()), k == 0 ? "source" : "target",
                                      line.substr(static_cast<size_t>(m.position(2)))});
          }
        } else if (statement) {
          out.statements.back().sql += " " + line;
        } else if (line.find("automatic vacuum of table") != std::string::npos ||
                   line.find("automatic analyze of table") != std::string::npos) {
          out.autovacuum_cancels.push_back(shorten(line));
        }
      }
    }
    for (auto& s : out.statements) s.sql = shorten(s.sql.substr(0, 4000));
    std::sort(out.statements.begin(), out.statements.end(), [](const auto& a, const auto& b) { return a.ms > b.ms; });
    return out;
  }

  // No "pg_catalog"./"public". prefixes, column lists as (...), select lists
  // as ..., this run's staging tables as staging[<target table>].
  std::string shorten(std::string sql) const {
    static const std::regex prefixes(R"("pg_catalog"\.|"public"\.)");
    static const std::regex spaces(R"(\s+)");
    static const std::regex columns(R"(\((?:s\.|t\.)?"[^()]*"\))");
    static const std::regex select_list(R"re((?:(?:[a-z]+\.)?"[^"]*"(?:::"[^"]*")?, ){2,}(?:[a-z]+\.)?"[^"]*"(?:::"[^"]*")?)re");
    static const std::regex staging(R"re("stagesync"\."s_[0-9A-Za-z]+_[0-9a-f]+_([0-9]+)")re");
    static const std::regex rejects(R"re("stagesync"\."r_[0-9A-Za-z]+_[0-9a-f]+")re");
    sql = std::regex_replace(sql, prefixes, "");
    sql = std::regex_replace(sql, spaces, " ");
    if (!sql.empty() && sql[0] == ' ') sql.erase(0, 1);
    sql = std::regex_replace(sql, columns, "(...)");
    sql = std::regex_replace(sql, select_list, "...");
    sql = std::regex_replace(sql, rejects, "rejects");
    std::string named;
    std::smatch s;
    while (std::regex_search(sql, s, staging)) {
      named += s.prefix().str() + "staging[" + plan_.tables.at(std::stoul(s[1].str())).target_name + "]";
      sql = s.suffix().str();
    }
    return named + sql;
  }

  Options o_;
  cluster::LocalCluster source_{"stagesync-bench-src"};
  cluster::LocalCluster target_{"stagesync-bench-tgt"};
  double generate_seconds_ = 0;
  std::string config_path_;
  std::string dev_config_path_;
  config::Config cfg_;
  plan::SyncPlan plan_;
  std::string server_version_;
};

struct Variant {
  std::string name;
  std::vector<double> seconds;
  std::vector<long> rss_kb;  // empty for the floors
};

void print_results(const std::vector<Variant>& variants, int64_t rows, bool markdown) {
  // Ratios are to the first two variants: the physical and the safe floor.
  double physical = median(variants[0].seconds), safe = median(variants[1].seconds);
  std::vector<std::vector<std::string>> table = {
      {"variant", "wall s (median)", "min..max s", "rows read", "rows/s", "x physical", "x safe", "peak RSS MB"}};
  for (const auto& v : variants) {
    double s = median(v.seconds);
    auto [lo, hi] = std::minmax_element(v.seconds.begin(), v.seconds.end());
    std::string rss = "-";
    if (!v.rss_kb.empty()) rss = fixed(static_cast<double>(*std::max_element(v.rss_kb.begin(), v.rss_kb.end())) / 1024, 1);
    table.push_back({v.name, fixed(s, 2), fixed(*lo, 2) + ".." + fixed(*hi, 2), std::to_string(rows),
                     fixed(static_cast<double>(rows) / s, 0), fixed(s / physical, 2), fixed(s / safe, 2), rss});
  }
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& row : table)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (size_t r = 0; r < table.size(); ++r) {
    std::string line = markdown ? "|" : "";
    for (size_t c = 0; c < table[r].size(); ++c) {
      std::string cell = table[r][c];
      cell.resize(width[c], ' ');
      line += markdown ? " " + cell + " |" : cell + "  ";
    }
    std::cout << line << "\n";
    if (markdown && r == 0) {
      std::string rule = "|";
      for (size_t c = 0; c < width.size(); ++c) {
        rule += c == 0 ? ":" + std::string(width[c] + 1, '-') + "|" : std::string(width[c] + 1, '-') + ":|";
      }
      std::cout << rule << "\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  if (access(o.stagesync.c_str(), X_OK) != 0) usage("no executable stagesync at " + o.stagesync + " (use --stagesync PATH)");
  try {
    std::string load_before = load_average();
    std::cerr << "starting two servers and generating scale " << o.scale << "...\n";
    Bench bench(o);
    std::cerr << "generated in " << fixed(bench.generate_seconds(), 1) << " s; PostgreSQL " << bench.server_version()
              << ", " << bench.table_count() << " tables\n";
    enum { kPhysical, kSafe, kSafeAgain, kFull, kResync, kSwap, kTruncate, kIncNone, kIncChanged, kIncDeleted, kVacuumed };
    std::vector<Variant> v = {{"physical floor", {}, {}},
                              {"safe floor", {}, {}},
                              {"safe floor, into the filled target", {}, {}},
                              {"stagesync full sync", {}, {}},
                              {"stagesync re-sync, no change", {}, {}},
                              {"stagesync full sync, swap", {}, {}},
                              {"stagesync full sync, truncate-first", {}, {}},
                              {"stagesync incremental, no change", {}, {}},
                              {"stagesync incremental, ~1% changed", {}, {}},
                              {"stagesync incremental, 1% deleted", {}, {}}};
    if (o.vacuumed_target) v.push_back({"stagesync full sync, vacuumed empty target", {}, {}});
    auto record = [&](Variant& variant, const ChildRun& run) {
      variant.seconds.push_back(run.seconds);
      variant.rss_kb.push_back(run.max_rss_kb);
    };
    int64_t rows = 0, safe_rows = 0, again_rows = 0, synced_rows = 0;
    for (int r = 0; r < o.repeat; ++r) {
      std::cerr << "run " << r + 1 << "/" << o.repeat << ": physical floor";
      v[kPhysical].seconds.push_back(bench.physical_floor(rows));
      std::cerr << ", safe floor";
      v[kSafe].seconds.push_back(bench.safe_floor(safe_rows));
      v[kSafeAgain].seconds.push_back(bench.safe_floor_again(again_rows));
      std::cerr << ", stagesync";
      bench.fresh_target();
      record(v[kFull], bench.stagesync({}));
      synced_rows = bench.target_rows();
      bench.settle_target();
      record(v[kResync], bench.stagesync({}));
      bench.settle_target();
      record(v[kSwap], bench.stagesync({"--strategy", "swap"}));
      bench.settle_target();
      record(v[kTruncate], bench.stagesync({"--strategy", "truncate-first", "--i-accept-data-loss"}, true));
      // Incremental runs over the synced target. The source changes stay
      // (later rounds start from them); each round's full runs read them too.
      std::cerr << ", incremental";
      bench.settle_target();
      record(v[kIncNone], bench.stagesync({"--mode", "incremental"}));
      bench.change_source(demo::desktop_changes_sql(1000 + static_cast<uint64_t>(r)));
      bench.settle_target();
      record(v[kIncChanged], bench.stagesync({"--mode", "incremental"}));
      bench.change_source(bench.delete_share(1.0));
      bench.settle_target();
      record(v[kIncDeleted], bench.stagesync({"--mode", "incremental"}));
      if (o.vacuumed_target) {
        std::cerr << ", stagesync into a vacuumed target";
        bench.fresh_target();
        bench.settle_target();
        record(v[kVacuumed], bench.stagesync({}));
      }
      std::cerr << "\n";
    }
    std::cout << "scale " << o.scale << ", " << rows << " source rows in " << bench.table_count()
              << " tables, median of " << o.repeat << " run(s), PostgreSQL " << bench.server_version() << ", "
              << std::thread::hardware_concurrency() << " CPUs, load average " << load_before << " before and "
              << load_average() << " after\n";
    if (o.markdown) std::cout << "\n";
    print_results(v, rows, o.markdown);
    if (o.markdown) std::cout << "\n";
    bool same = safe_rows == synced_rows && again_rows == safe_rows;
    std::cout << "rows in the target tables after the safe floor: " << safe_rows << " (again: " << again_rows
              << "), after stagesync: " << synced_rows << (same ? " (same)" : " (DIFFERENT)") << "\n";
    if (o.profile) {
      for (const RunLog& run : bench.profile()) {
        const auto& statements = run.statements;
        double total = 0;
        std::map<std::string, std::pair<double, int>> by_kind;  // "<server> <first word>" -> ms, count
        for (const auto& s : statements) {
          total += s.ms;
          auto& k = by_kind[s.server + " " + s.sql.substr(0, s.sql.find(' '))];
          k.first += s.ms;
          ++k.second;
        }
        std::cout << "\n" << run.name << ": " << statements.size() << " statements, " << fixed(total / 1000, 2)
                  << " s in total;";
        for (const auto& [kind, t] : by_kind) {
          if (t.first >= 10) std::cout << " " << kind << " " << fixed(t.first / 1000, 2) << " s (" << t.second << "),";
        }
        std::cout << " slowest:\n";
        for (size_t i = 0; i < statements.size() && i < 25; ++i) {
          std::string sql = statements[i].sql.substr(0, 240);
          std::cout << (o.markdown ? "- " : "  ") << fixed(statements[i].ms, 0) << " ms  " << statements[i].server
                    << "  " << (o.markdown ? "`" + sql + "`" : sql) << "\n";
        }
        for (const auto& cancel : run.autovacuum_cancels) {
          std::cout << (o.markdown ? "- " : "  ") << "autovacuum cancelled by a lock request (up to 1 s wait): " << cancel
                    << "\n";
        }
      }
    }
    return same ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "\nsync_bench failed: " << e.what() << "\n";
    return 1;
  }
}
