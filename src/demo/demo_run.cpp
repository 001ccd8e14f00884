#include "demo/demo_run.h"

#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "cli/exit_codes.h"
#include "cluster/local_cluster.h"
#include "config/config.h"
#include "demo/reference_data.h"
#include "demo/sqlite_desktop.h"
#include "pg/connection.h"
#include "report/reporter.h"
#include "reverse/reverse_run.h"
#include "run/sync_run.h"
#include "run/verify_run.h"

namespace stagesync::demo {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void exec_all(pg::Connection& conn, const std::vector<std::string>& statements) {
  for (const auto& sql : statements) conn.exec(sql);
}

int64_t count(pg::Connection& conn, const std::string& sql) { return conn.exec(sql).int64(0, 0); }

std::string fmt_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fs", s);
  return buf;
}

// Rows on the cloud side the sync does not own, as one comparable fingerprint.
std::string mobile_fingerprint(pg::Connection& cloud) {
  return cloud
      .exec("SELECT md5(string_agg(t, '|' ORDER BY t)) FROM ("
            "SELECT 'c' || c::text AS t FROM climaster c WHERE source <> 'D' UNION ALL "
            "SELECT 'j' || j::text FROM jobshead j WHERE source <> 'D' UNION ALL "
            "SELECT 'r' || r::text FROM reminder r WHERE source <> 'D' UNION ALL "
            "SELECT 'w' || w::text FROM workdiary w) x")
      .text(0, 0);
}

int64_t total_writes(const report::RunSummary& r) {
  int64_t n = 0;
  for (const auto& t : r.tables) n += t.counts.inserted + t.counts.updated + t.counts.deleted;
  return n;
}

// The SQLite demo (`demo --source sqlite`): the same desktop data written into
// a SQLite file, synced, changed (by SQLite statements, as the application
// would), synced incrementally by fingerprints, synced again with nothing to
// do, verified. No reverse steps: stagesync never writes a SQLite file.
int sqlite_demo(const DemoOptions& o, report::Reporter& out, cluster::LocalCluster& server, pg::Connection& desktop,
                pg::Connection& cloud) {
  std::string file = server.directory() + "/desktop.sqlite";
  auto t0 = Clock::now();
  auto rows = write_sqlite_desktop(desktop, file, "wal");
  int64_t written = 0;
  for (const auto& [table, n] : rows) written += n;
  out.info("demo: desktop data written into the SQLite file " + file + " (" + report::thousands(written) +
           " rows, WAL journal; date-times as ISO text, Unix seconds and Julian days) (" +
           fmt_seconds(seconds_since(t0)) + ")");
  std::string config_path = server.directory() + "/stagesync-demo-sqlite.yaml";
  std::ofstream(config_path) << sqlite_demo_config(server.url("cloud"), file);
  config::Config cfg = config::load_config(config_path);
  std::string mobile_before = mobile_fingerprint(cloud);

  run::SyncOptions sync;
  out.info("\n== 1. full sync from the SQLite file (merge strategy) ==");
  report::RunSummary first = run::run_sync(cfg, sync, out);
  out.finished(first);

  out.info("\n== 2. the desktop application changes the file (updates, inserts, deletes, changed keys), then an "
           "incremental sync: only rows whose fingerprint changed cross the network ==");
  {
    sqlite3* db = nullptr;
    if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + file);
    for (const auto& sql : sqlite_desktop_changes(42)) {
      char* err = nullptr;
      if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string why = err ? err : "?";
        sqlite3_free(err);
        sqlite3_close(db);
        throw std::runtime_error("changing " + file + ": " + why);
      }
    }
    sqlite3_close(db);
  }
  run::SyncOptions incremental = sync;
  incremental.mode = "incremental";
  report::RunSummary second = run::run_sync(cfg, incremental, out);
  out.finished(second);

  out.info("\n== 3. the same incremental sync again: nothing changed, so nothing is read or written ==");
  report::RunSummary third = run::run_sync(cfg, incremental, out);
  out.finished(third);

  out.info("\n== 4. verify: checksums of owned rows, SQLite file against target ==");
  report::RunSummary check = run::run_verify(cfg, run::SessionOptions{}, out);
  out.finished(check);
  bool mobile_intact = mobile_fingerprint(cloud) == mobile_before;
  int64_t read_second = 0, read_third = 0;
  for (const auto& t : second.tables) read_second += t.counts.read;
  for (const auto& t : third.tables) read_third += t.counts.read;

  out.info("\n== summary ==");
  out.info("full sync:        " + fmt_seconds(first.seconds));
  out.info("incremental sync: " + fmt_seconds(second.seconds) + ", rows sent: " + std::to_string(read_second));
  out.info("repeat sync:      " + fmt_seconds(third.seconds) + ", rows sent: " + std::to_string(read_third) +
           ", rows written: " + std::to_string(total_writes(third)));
  out.info(std::string("verify:           ") + (check.exit_code == 0 ? "every table matches" : "DIFFERENCES FOUND"));
  out.info(std::string("mobile rows:      ") + (mobile_intact ? "untouched (byte-identical)" : "CHANGED"));
  if (o.keep) {
    out.info("\nthe demo server keeps running:\n  source: " + file + "\n  target: " + server.url("cloud") +
             "\n  config: " + config_path + "\n  try:    stagesync verify --config " + config_path);
  }
  bool ok = check.exit_code == 0 && mobile_intact && total_writes(third) == 0 && read_third == 0;
  return ok ? cli::kOk : cli::kDifferences;
}

}  // namespace

int run_demo(const DemoOptions& o) {
  auto out = report::make_reporter(o.json ? report::Format::Json : report::Format::Auto);
  try {
    auto t0 = Clock::now();
    out->info("demo: starting a throwaway PostgreSQL server (initdb + pg_ctl)...");
    cluster::LocalCluster server("stagesync-demo");
    if (o.keep) server.keep();
    server.create_database("desktop");
    server.create_database("cloud");
    out->info("demo: server on 127.0.0.1:" + std::to_string(server.port()) + " in " + server.directory() + " (" +
              fmt_seconds(seconds_since(t0)) + ")");

    pg::Connection desktop(pg::Endpoint{server.conninfo("desktop"), "", "stagesync demo", 10});
    pg::Connection cloud(pg::Endpoint{server.conninfo("cloud"), "", "stagesync demo", 10});
    auto t1 = Clock::now();
    exec_all(desktop, desktop_schema_sql());
    exec_all(desktop, desktop_data_sql(o.scale, 42));
    exec_all(cloud, cloud_schema_sql());
    exec_all(cloud, cloud_mobile_rows_sql(42));
    int64_t desktop_rows = count(desktop,
                                 "SELECT (SELECT count(*) FROM climaster) + (SELECT count(*) FROM jobshead) + "
                                 "(SELECT count(*) FROM jobtasks) + (SELECT count(*) FROM taskchecklist)");
    char scale[32];
    std::snprintf(scale, sizeof scale, "%g", o.scale);
    out->info("demo: desktop database generated at scale " + std::string(scale) + " (" +
              report::thousands(desktop_rows) + " rows in the four largest tables) with orphans, duplicate keys, "
              "NULL keys and non-ASCII text; cloud database has mobile-created rows (" +
              fmt_seconds(seconds_since(t1)) + ")");

    if (o.source == "sqlite") return sqlite_demo(o, *out, server, desktop, cloud);

    std::string config_path = server.directory() + "/stagesync-demo.yaml";
    std::ofstream(config_path) << demo_config_yaml(server.url("desktop"), server.url("cloud"));
    config::Config cfg = config::load_config(config_path);
    std::string mobile_before = mobile_fingerprint(cloud);

    run::SyncOptions sync;
    out->info("\n== 1. full sync (merge strategy) ==");
    report::RunSummary first = run::run_sync(cfg, sync, *out);
    out->finished(first);

    out->info("\n== 2. desktop changes (updates, inserts, deletes, a renamed client), then an incremental sync ==");
    exec_all(desktop, desktop_changes_sql(42));
    run::SyncOptions incremental = sync;
    incremental.mode = "incremental";
    report::RunSummary second = run::run_sync(cfg, incremental, *out);
    out->finished(second);

    out->info("\n== 3. the same incremental sync again: nothing changed, so nothing is written ==");
    report::RunSummary third = run::run_sync(cfg, incremental, *out);
    out->finished(third);
    int64_t third_writes = 0;
    for (const auto& t : third.tables) third_writes += t.counts.inserted + t.counts.updated + t.counts.deleted;

    out->info("\n== 4. verify: checksums of owned rows, source against target ==");
    report::RunSummary check = run::run_verify(cfg, run::SessionOptions{}, *out);
    out->finished(check);

    bool mobile_intact = mobile_fingerprint(cloud) == mobile_before;

    out->info("\n== 5. reverse sync: work diary entries, leave requests and reminders created on phones reach the "
              "desktop ==");
    reverse::ReverseOptions back;
    report::RunSummary fifth = reverse::run_reverse(cfg, back, *out);
    out->finished(fifth);
    out->info("desktop now holds " +
              std::to_string(count(desktop, "SELECT count(*) FROM workdiary WHERE source = 'M'")) +
              " work diary entries, " +
              std::to_string(count(desktop, "SELECT count(*) FROM learequest WHERE source = 'M'")) +
              " leave requests and " +
              std::to_string(count(desktop, "SELECT count(*) FROM mbreminder WHERE rem_id >= 900000000")) +
              " reminders from the phones; e.g. " +
              desktop.exec("SELECT format('work diary %s: %s to %s, %s', wd_id, timefrom, timeto, "
                           "coalesce(tasknotes, '(no note)')) FROM workdiary ORDER BY wd_id LIMIT 1")
                  .text(0, 0));

    out->info("\n== 6. a phone edits a work diary entry and files a leave request; reverse again ==");
    int64_t first_wd = count(cloud, "SELECT min(wd_id) FROM workdiary WHERE source = 'M'");
    cloud.exec("UPDATE workdiary SET tasknotes = 'corrected on the phone', timeto = timeto + interval '15 minutes' "
               "WHERE wd_id = " + std::to_string(first_wd));
    cloud.exec("INSERT INTO learequest (learequest_id, staff_id, fromdate, todate, leavetype, reason, approval_status) "
               "VALUES (1001, 3, date '2025-06-02', date '2025-06-04', 'Casual', 'filed in the demo', 'Pending')");
    report::RunSummary sixth = reverse::run_reverse(cfg, back, *out);
    out->finished(sixth);
    out->info("desktop: " + desktop.exec("SELECT format('work diary %s: %s to %s, %s', wd_id, timefrom, timeto, "
                                         "tasknotes) FROM workdiary WHERE wd_id = " + std::to_string(first_wd))
                                .text(0, 0));

    out->info("\n== 7. forward incremental, then reverse again: nothing changed on either side, nothing is written ==");
    report::RunSummary seventh = run::run_sync(cfg, incremental, *out);
    out->finished(seventh);
    report::RunSummary eighth = reverse::run_reverse(cfg, back, *out);
    out->finished(eighth);
    int64_t round_trip_writes = 0;
    for (const auto* r : {&seventh, &eighth}) {
      for (const auto& t : r->tables) round_trip_writes += t.counts.inserted + t.counts.updated + t.counts.deleted;
    }
    int64_t reverse_updates = 0;
    for (const auto& t : sixth.tables) reverse_updates += t.counts.updated;
    out->info("\n== summary ==");
    out->info("full sync:        " + fmt_seconds(first.seconds));
    out->info("incremental sync: " + fmt_seconds(second.seconds));
    out->info("repeat sync:      " + fmt_seconds(third.seconds) + ", rows written: " + std::to_string(third_writes));
    out->info(std::string("verify:           ") + (check.exit_code == 0 ? "every table matches" : "DIFFERENCES FOUND"));
    out->info(std::string("mobile rows:      ") + (mobile_intact ? "untouched (byte-identical)" : "CHANGED"));
    out->info("reverse sync:     " + fmt_seconds(fifth.seconds) + " (first), " + fmt_seconds(sixth.seconds) + " (" +
              std::to_string(reverse_updates) + " row updated on the desktop), " + fmt_seconds(eighth.seconds) +
              " (nothing to do)");
    out->info("round trip:       forward + reverse with no change wrote " + std::to_string(round_trip_writes) +
              " rows");
    if (o.keep) {
      out->info("\nthe demo server keeps running:\n  source: " + server.url("desktop") + "\n  target: " +
                server.url("cloud") + "\n  config: " + config_path +
                "\n  try:    stagesync verify --config " + config_path);
    }
    bool ok = check.exit_code == 0 && mobile_intact && third_writes == 0 && round_trip_writes == 0 &&
              reverse_updates == 1;
    return ok ? cli::kOk : cli::kDifferences;
  } catch (const std::exception& e) {
    std::cerr << "demo failed: " << e.what() << "\n";
    return cli::kInternal;
  }
}

}  // namespace stagesync::demo
