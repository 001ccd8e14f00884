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
// --rtt-ms N puts a simulated slow link (tests/support/tcp_proxy: N/2 ms each
// way, no bandwidth limit) between every connection to the target and the
// target: stagesync's (its configuration names the proxy) and the floors'. The
// source stays direct (the desktop is on the office LAN). The proxy counts per
// variant the round trips to the target (client bursts that follow server
// data) and the bytes each way; two more floors measure the link:
//   COPY pipe floor  per table, a new connection pair (as `psql -c "COPY ... TO
//                    STDOUT" | psql -c "COPY ... FROM STDIN"` would), the plan's
//                    source SELECT as binary COPY into an empty table of the
//                    same columns.
//   target floor     one target connection; per table, parents first, the
//                    plan's source SELECT as binary COPY straight into the real,
//                    empty target tables (keys, indexes, foreign keys, triggers),
//                    keeping the rows the safe floor keeps: no staging, no judging.
//
// --vacuumed-target adds a stagesync full sync into an empty target whose tables
// were VACUUM ANALYZEd (as after `vacuumdb --analyze`, or after every row was
// deleted and autovacuum ran): the planner then knows the tables are empty.
// --profile adds one extra safe floor and round of stagesync runs (full, re-sync,
// swap, incremental with no change and after a change batch) with
// log_min_duration_statement = 0 and prints their slowest statements.

#include <libpq-fe.h>
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
#include "bench_support.h"
#include "cluster/local_cluster.h"
#include "config/config.h"
#include "demo/reference_data.h"
#include "pg/connection.h"
#include "pg/sql.h"
#include "plan/sync_plan.h"
#include "pg/copy_pipe.h"
#include "source/postgres/postgres_source.h"
#include "source/postgres/source_query.h"
#include "reverse_bench.h"
#include "support/tcp_proxy.h"

namespace {

using namespace stagesync;
using namespace stagesync::bench;

struct Options {
  double scale = 1;
  int repeat = 1;
  std::string stagesync;
  bool markdown = false;
  bool profile = false;
  bool vacuumed_target = false;
  int rtt_ms = -1;  // -1: not given (no link columns); 0: no proxy
  bool reverse = false;  // --reverse: only the reverse sync runs (reverse_bench.h)
};

[[noreturn]] void usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "sync_bench: " << problem << "\n";
  std::cerr << "usage: sync_bench --scale N [--repeat R] [--stagesync PATH] [--markdown] [--profile]\n"
               "                  [--vacuumed-target] [--rtt-ms N]\n"
               "       sync_bench --reverse [--repeat R] [--stagesync PATH] [--markdown]\n";
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  o.stagesync = default_stagesync();
  bool have_scale = false;
  Args args(argc, argv, [](const std::string& problem) { usage(problem); });
  for (std::string a; args.next(a);) {
    auto value = [&] { return args.value(); };
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
      } else if (a == "--reverse") {
        o.reverse = true;
      } else if (a == "--vacuumed-target") {
        o.vacuumed_target = true;
      } else if (a == "--rtt-ms") {
        o.rtt_ms = std::stoi(value());
        if (o.rtt_ms < 0) usage("--rtt-ms must be 0 or more");
      } else {
        usage(a == "--help" || a == "-h" ? "" : "unknown argument " + a);
      }
    } catch (const std::logic_error&) {
      usage("bad value for " + a);
    }
  }
  if (!o.reverse && (!have_scale || o.scale <= 0)) usage("--scale N (N > 0) is required");
  if (o.repeat < 1) usage("--repeat must be at least 1");
  return o;
}

pg::Connection connect(const cluster::LocalCluster& server, const std::string& db) {
  return bench::connect(server, db, "sync_bench");
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
  return pg::pipe_copy(source, source::postgres::source_copy(t, source), target,
                          "COPY " + into + " (" + pg::column_list(names) + ") FROM STDIN (FORMAT binary)");
}

// "(c1 type1, c2 type2, ...)" with the staging types.
std::string staged_columns_ddl(const plan::TablePlan& t) {
  std::vector<std::string> cols;
  for (const auto& c : t.columns) cols.push_back(pg::ident(c.name) + " " + c.stage_type);
  return "(" + pg::join(cols, ", ") + ")";
}

// A plain libpq connection, as psql opens one: no statement after the startup.
class RawConnection {
 public:
  explicit RawConnection(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) {
      std::string why = PQerrorMessage(c_);
      PQfinish(c_);
      throw std::runtime_error("cannot connect: " + why);
    }
  }
  ~RawConnection() { PQfinish(c_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  PGconn* get() const { return c_; }

 private:
  PGconn* c_;
};

// `copy_out` on the source piped into `copy_in` on the target, as two psql
// processes in a pipe would; returns the rows the target stored.
int64_t raw_pipe(PGconn* source, const std::string& copy_out, PGconn* target, const std::string& copy_in) {
  auto expect = [](PGconn* c, PGresult* r, ExecStatusType want, const std::string& what) {
    bool ok = PQresultStatus(r) == want;
    std::string why = ok ? "" : PQresultErrorMessage(r) + std::string(PQerrorMessage(c));
    PQclear(r);
    if (!ok) throw std::runtime_error(what + ": " + why);
  };
  expect(target, PQexec(target, copy_in.c_str()), PGRES_COPY_IN, copy_in.substr(0, 200));
  expect(source, PQexec(source, copy_out.c_str()), PGRES_COPY_OUT, copy_out.substr(0, 200));
  char* buf = nullptr;
  int n = 0;
  while ((n = PQgetCopyData(source, &buf, 0)) > 0) {
    int put = PQputCopyData(target, buf, n);
    PQfreemem(buf);
    if (put != 1) throw std::runtime_error(std::string("COPY to the target: ") + PQerrorMessage(target));
  }
  if (n != -1) throw std::runtime_error(std::string("COPY from the source: ") + PQerrorMessage(source));
  expect(source, PQgetResult(source), PGRES_COMMAND_OK, "COPY from the source");
  while (PGresult* r = PQgetResult(source)) PQclear(r);
  if (PQputCopyEnd(target, nullptr) != 1) throw std::runtime_error(std::string("COPY end: ") + PQerrorMessage(target));
  PGresult* r = PQgetResult(target);
  int64_t rows = PQresultStatus(r) == PGRES_COMMAND_OK ? std::atoll(PQcmdTuples(r)) : -1;
  expect(target, r, PGRES_COMMAND_OK, "COPY into the target");
  while (PGresult* rest = PQgetResult(target)) PQclear(rest);
  return rows;
}

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
    if (o.rtt_ms > 0) {
      proxy_ = std::make_unique<testing::TcpProxy>(target_.port());
      proxy_->set_delay(std::chrono::milliseconds(o.rtt_ms / 2));
    }
    auto t0 = Clock::now();
    source_.create_database("desktop");
    target_.create_database("cloud");
    {
      pg::Connection desktop = connect(source_, "desktop");
      for (const auto& sql : demo::desktop_schema_sql()) desktop.exec(sql);
      for (const auto& sql : demo::desktop_data_sql(o.scale, 42)) desktop.exec(sql);
    }
    generate_seconds_ = since(t0);
    std::string yaml = demo::demo_config_yaml(source_.url("desktop"), target_url("cloud"));
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
    source::postgres::PostgresSource desktop(std::make_unique<pg::Connection>(connect(source_, "desktop")), cfg_);
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
    fresh_cloud(target_, "cloud", "sync_bench");
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
    start_measuring();
    auto start = Clock::now();
    pg::Connection desktop = connect_floor(source_, "desktop");
    pg::Connection cloud = connect_floor_over_link("cloud");
    desktop.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    rows = 0;
    for (size_t i : order) rows += copy_table(desktop, cloud, plan_.tables[i], floor_table(i));
    desktop.exec("COMMIT");
    return since(start);
  }

  // Per table a new connection pair and one binary COPY pipe into an empty
  // table of the staged columns. Returns seconds; `rows` receives the rows copied.
  double copy_pipe_floor(int64_t& rows) {
    fresh_target();
    std::vector<size_t> order = plan_.selected();
    std::vector<std::string> copy_out, copy_in;
    {
      pg::Connection cloud = connect(target_, "cloud");
      pg::Connection desktop = connect(source_, "desktop");
      for (size_t i : order) {
        const plan::TablePlan& t = plan_.tables[i];
        cloud.exec("CREATE TABLE " + floor_table(i) + " " + staged_columns_ddl(t));
        std::vector<std::string> names;
        for (const auto& c : t.columns) names.push_back(c.name);
        copy_out.push_back(source::postgres::source_copy(t, desktop));
        copy_in.push_back("COPY " + floor_table(i) + " (" + pg::column_list(names) + ") FROM STDIN (FORMAT binary)");
      }
    }
    checkpoint();
    start_measuring();
    auto start = Clock::now();
    rows = 0;
    for (size_t k = 0; k < order.size(); ++k) {
      RawConnection desktop(source_.conninfo("desktop"));
      RawConnection cloud(target_url("cloud"));
      rows += raw_pipe(desktop.get(), copy_out[k], cloud.get(), copy_in[k]);
    }
    return since(start);
  }

  // One target connection; per table, parents first, a binary COPY of the
  // rows the safe floor keeps straight into the real target table. Returns
  // seconds; `rows` receives the rows stored.
  double target_floor(int64_t& rows) {
    fresh_target();
    std::vector<size_t> order = plan_.selected();
    std::vector<std::string> copy_out, copy_in;
    {
      pg::Connection desktop = connect(source_, "desktop");
      for (size_t i : order) {
        std::vector<std::string> columns;
        copy_out.push_back(source::postgres::binary_copy_out(kept_rows_select(plan_.tables[i], desktop, columns)));
        copy_in.push_back("COPY " + plan_.tables[i].target.qualified_name() + " (" + pg::column_list(columns) +
                          ") FROM STDIN (FORMAT binary)");
      }
    }
    start_measuring();
    auto start = Clock::now();
    pg::Connection desktop = connect(source_, "desktop");
    RawConnection cloud(target_url("cloud"));
    desktop.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    rows = 0;
    for (size_t k = 0; k < order.size(); ++k) rows += raw_pipe(desktop.raw(), copy_out[k], cloud.get(), copy_in[k]);
    desktop.exec("COMMIT");
    return since(start);
  }

  // Zeroes the link's counters: the next measurement starts now.
  void start_measuring() {
    if (proxy_) proxy_->reset_counters();
  }
  // What the link carried since start_measuring(), once the last bytes in
  // flight (a closing client's Terminate) have arrived.
  LinkUse link_use() {
    if (!proxy_) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(o_.rtt_ms / 2 + 20));
    return {proxy_->round_trips(), proxy_->bytes_up(), proxy_->bytes_down(), proxy_->connections()};
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
    start_measuring();
    std::vector<std::string> args = {o_.stagesync, "sync", "--config", development ? dev_config_path_ : config_path_};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_child(args, target_.directory() + "/stagesync.out");
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
    change_source(demo::desktop_changes_sql(4000));
    settle_target();
    marks = log_sizes();
    stagesync({"--mode", "incremental"});
    out.push_back(logged_since("stagesync incremental, ~1% changed again", marks));
    log_statements(false);
    return out;
  }

 private:
  // The target as stagesync and the floors reach it: through the link when there is one.
  std::string target_url(const std::string& db) const {
    return proxy_ ? "postgresql://postgres@127.0.0.1:" + std::to_string(proxy_->port()) + "/" + db : target_.url(db);
  }
  pg::Connection connect_floor_over_link(const std::string& db) {
    pg::Connection c(pg::Endpoint{target_url(db), "", "sync_bench", 10});
    c.exec("SET jit = off");
    return c;
  }

  // The plan's source SELECT for `t`, with the target's owner and `set:`
  // columns as constants, keeping what safe_insert() keeps: non-NULL keys, one
  // row per key where duplicates are expected (the first one), and for
  // `on_orphan: skip` references only rows whose parent row is selected too.
  // `columns` receives the target columns, in order.
  std::string kept_rows_select(const plan::TablePlan& t, pg::Connection& source,
                               std::vector<std::string>& columns) const {
    std::vector<std::string> values;
    for (const auto& c : t.columns) {
      columns.push_back(c.name);
      values.push_back("s." + pg::ident(c.name));
    }
    std::vector<plan::ColumnValue> constants = t.constants;
    if (t.owner) constants.insert(constants.begin(), *t.owner);
    for (const auto& [name, value] : constants) {
      const catalog::Column* col = t.target.find(name);
      columns.push_back(name);
      values.push_back("CAST(" + source.literal(value) + " AS " + (col ? col->type : std::string("text")) + ")");
    }
    std::vector<std::string> keep;
    for (const auto& k : t.key) keep.push_back("s." + pg::ident(k) + " IS NOT NULL");
    for (const auto& ref : t.references) {
      if (ref.policy != config::OrphanPolicy::Skip) continue;
      std::vector<std::string> some_null, same;
      for (size_t k = 0; k < ref.columns.size(); ++k) {
        some_null.push_back("s." + pg::ident(ref.columns[k]) + " IS NULL");
        same.push_back("p." + pg::ident(ref.parent_columns[k]) + " = s." + pg::ident(ref.columns[k]));
      }
      keep.push_back("(" + pg::join(some_null, " OR ") + " OR EXISTS (SELECT 1 FROM (" +
                     source::postgres::source_select(plan_.tables[ref.parent], source) + ") p WHERE " + pg::join(same, " AND ") +
                     "))");
    }
    bool distinct = t.keyed() && t.duplicates.keep_newest;
    std::vector<std::string> key;
    for (const auto& k : t.key) key.push_back("s." + pg::ident(k));
    std::string out = std::string("SELECT ") + (distinct ? "DISTINCT ON (" + pg::join(key, ", ") + ") " : "") +
                      pg::join(values, ", ") + " FROM (" + source::postgres::source_select(t, source) + ") s";
    if (!keep.empty()) out += " WHERE " + pg::join(keep, " AND ");
    if (distinct) out += " ORDER BY " + pg::join(key, ", ");
    return out;
  }

  std::string floor_table(size_t i) const { return pg::ident("floor_" + plan_.tables[i].target_name); }
  std::string temp_table(size_t i) const { return pg::qualified("pg_temp", "stage_" + plan_.tables[i].target_name); }

  void checkpoint() { bench::checkpoint({&source_, &target_}, "sync_bench"); }

  double run_safe_floor(int64_t& inserted) {
    std::vector<size_t> order = plan_.selected();
    start_measuring();
    auto start = Clock::now();
    pg::Connection desktop = connect_floor(source_, "desktop");
    pg::Connection cloud = connect_floor_over_link("cloud");
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
    static const std::regex released(R"re("stagesync"\."r_[0-9A-Za-z]+_[0-9a-f]+_x")re");
    sql = std::regex_replace(sql, prefixes, "");
    sql = std::regex_replace(sql, spaces, " ");
    if (!sql.empty() && sql[0] == ' ') sql.erase(0, 1);
    sql = std::regex_replace(sql, columns, "(...)");
    sql = std::regex_replace(sql, select_list, "...");
    sql = std::regex_replace(sql, rejects, "rejects");
    sql = std::regex_replace(sql, released, "released");
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
  std::unique_ptr<testing::TcpProxy> proxy_;  // the slow link, with --rtt-ms N > 0
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
  std::vector<LinkUse> link;
};

int64_t median_of(const std::vector<LinkUse>& v, int64_t LinkUse::*field) {
  std::vector<double> x;
  for (const auto& u : v) x.push_back(static_cast<double>(u.*field));
  return x.empty() ? -1 : static_cast<int64_t>(median(x));
}

// The link view (--rtt-ms): wall time against the two floors that move the
// data over the same link, and what the link carried (medians over the repeats).
void print_link_results(const std::vector<Variant>& variants, const Variant& copy_pipe, const Variant& target_floor,
                        bool markdown) {
  double pipe = median(copy_pipe.seconds), floor = median(target_floor.seconds);
  std::vector<std::vector<std::string>> table = {{"variant", "wall s (median)", "min..max s", "x COPY pipe floor",
                                                  "x target floor", "round trips", "MB up", "MB down"}};
  auto mb = [](int64_t b) { return b < 0 ? std::string("-") : fixed(static_cast<double>(b) / 1e6, 2); };
  for (const auto& v : variants) {
    double s = median(v.seconds);
    auto [lo, hi] = std::minmax_element(v.seconds.begin(), v.seconds.end());
    int64_t trips = median_of(v.link, &LinkUse::round_trips);
    table.push_back({v.name, fixed(s, 2), fixed(*lo, 2) + ".." + fixed(*hi, 2), fixed(s / pipe, 2), fixed(s / floor, 2),
                     trips < 0 ? "-" : std::to_string(trips), mb(median_of(v.link, &LinkUse::bytes_up)),
                     mb(median_of(v.link, &LinkUse::bytes_down))});
  }
  print_table(table, markdown);
}

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
  print_table(table, markdown);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  if (access(o.stagesync.c_str(), X_OK) != 0) usage("no executable stagesync at " + o.stagesync + " (use --stagesync PATH)");
  if (o.reverse) return bench::reverse_bench(o.stagesync, o.repeat, o.markdown);
  try {
    std::string load_before = load_average();
    std::cerr << "starting two servers and generating scale " << o.scale << "...\n";
    Bench bench(o);
    std::cerr << "generated in " << fixed(bench.generate_seconds(), 1) << " s; PostgreSQL " << bench.server_version()
              << ", " << bench.table_count() << " tables\n";
    enum {
      kPhysical,
      kSafe,
      kSafeAgain,
      kCopyPipe,
      kTargetFloor,
      kFull,
      kResync,
      kSwap,
      kTruncate,
      kIncNone,
      kIncChanged,
      kIncChangedAgain,
      kIncDeleted,
      kVacuumed
    };
    std::vector<Variant> v = {{"physical floor", {}, {}, {}},
                              {"safe floor", {}, {}, {}},
                              {"safe floor, into the filled target", {}, {}, {}},
                              {"COPY pipe floor", {}, {}, {}},
                              {"target floor", {}, {}, {}},
                              {"stagesync full sync", {}, {}, {}},
                              {"stagesync re-sync, no change", {}, {}, {}},
                              {"stagesync full sync, swap", {}, {}, {}},
                              {"stagesync full sync, truncate-first", {}, {}, {}},
                              {"stagesync incremental, no change", {}, {}, {}},
                              {"stagesync incremental, ~1% changed", {}, {}, {}},
                              {"stagesync incremental, ~1% changed again", {}, {}, {}},
                              {"stagesync incremental, 1% deleted", {}, {}, {}}};
    if (o.vacuumed_target) v.push_back({"stagesync full sync, vacuumed empty target", {}, {}, {}});
    auto record = [&](Variant& variant, const ChildRun& run) {
      variant.seconds.push_back(run.seconds);
      variant.rss_kb.push_back(run.max_rss_kb);
      variant.link.push_back(bench.link_use());
    };
    auto floor = [&](Variant& variant, double seconds) {
      variant.seconds.push_back(seconds);
      variant.link.push_back(bench.link_use());
    };
    int64_t rows = 0, safe_rows = 0, again_rows = 0, synced_rows = 0, pipe_rows = 0, target_floor_rows = 0;
    for (int r = 0; r < o.repeat; ++r) {
      std::cerr << "run " << r + 1 << "/" << o.repeat << ": physical floor";
      floor(v[kPhysical], bench.physical_floor(rows));
      std::cerr << ", safe floor";
      floor(v[kSafe], bench.safe_floor(safe_rows));
      floor(v[kSafeAgain], bench.safe_floor_again(again_rows));
      std::cerr << ", COPY pipe floor";
      floor(v[kCopyPipe], bench.copy_pipe_floor(pipe_rows));
      std::cerr << ", target floor";
      floor(v[kTargetFloor], bench.target_floor(target_floor_rows));
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
      // A second batch: the run after an incremental one (the lookups' stored images are of it).
      bench.change_source(demo::desktop_changes_sql(3000 + static_cast<uint64_t>(r)));
      bench.settle_target();
      record(v[kIncChangedAgain], bench.stagesync({"--mode", "incremental"}));
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
    if (o.rtt_ms >= 0) {
      std::cout << "over a link of " << o.rtt_ms << " ms round trip"
                << (o.rtt_ms > 0 ? " (proxy, " + std::to_string(o.rtt_ms / 2) + " ms each way)" : " (direct, no proxy)")
                << " to the target:\n";
      if (o.markdown) std::cout << "\n";
      print_link_results(v, v[kCopyPipe], v[kTargetFloor], o.markdown);
      if (o.markdown) std::cout << "\n";
    }
    bool same =
        safe_rows == synced_rows && again_rows == safe_rows && target_floor_rows == safe_rows && pipe_rows == rows;
    std::cout << "rows in the target tables after the safe floor: " << safe_rows << " (again: " << again_rows
              << "), after the target floor: " << target_floor_rows << ", after stagesync: " << synced_rows
              << (same ? " (same)" : " (DIFFERENT)") << "\n";
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
