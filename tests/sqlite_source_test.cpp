// A SQLite desktop file as the source (SPEC 1.7, issue 14), end to end:
// real SQLite files written here, a real target PostgreSQL, the real sync.
//   - values of every storage class convert into the target's types, and
//     one that does not stops the run before anything is applied, naming
//     table, column, rowid and value;
//   - incremental by fingerprints finds inserts, updates, deletes and a
//     changed key, agrees with a full sync, and writes nothing when nothing
//     changed;
//   - a writer committing to the file throughout the syncs (WAL and rollback
//     journal) is never blocked for a second, and every commit arrives;
//   - kill -9 during a sync leaves the target table before or after;
//   - a missing table or column, a file that is not a database: `check`
//     problems naming them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "apply/table_counts.h"
#include "demo/reference_data.h"
#include "demo/sqlite_desktop.h"
#include "support/sync_fixture.h"

namespace stagesync::testing {
namespace {

// A SQLite file this test writes, as the desktop application would.
class DesktopFile {
 public:
  explicit DesktopFile(const std::string& path, const std::string& journal = "wal") : path_(path) {
    std::filesystem::remove(path);
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("cannot create " + path);
    exec("PRAGMA journal_mode = " + journal);
  }
  ~DesktopFile() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string why = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + why);
    }
  }
  const std::string& path() const { return path_; }
  // Runs `statements` on the file at `path` (one connection, as an application would).
  static void apply(const std::string& path, const std::vector<std::string>& statements) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    for (const auto& sql : statements) {
      char* err = nullptr;
      if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string why = err ? err : "?";
        sqlite3_free(err);
        sqlite3_close(db);
        throw std::runtime_error(sql + ": " + why);
      }
    }
    sqlite3_close(db);
  }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

class SqliteSource : public SyncFixture {
 protected:
  SqliteSource() {
    dir_ = std::filesystem::temp_directory_path() / ("stagesync-sqlite-" + std::to_string(getpid()) + "-" +
                                                     std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
  }
  ~SqliteSource() override { std::filesystem::remove_all(dir_); }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // A configuration reading `db` into the target (its tables block given).
  std::string config(const std::string& db, const std::string& tables_yaml, const std::string& extra = "") {
    std::string path = file("stagesync.yaml");
    std::ofstream(path) << "source: { sqlite: \"" << db << "\" }\ntarget: { url: \"" << target_url() << "\" }\n"
                        << extra << "tables:\n"
                        << tables_yaml;
    return path;
  }

  // The jobs table of these tests: desktop and cloud.
  void jobs_schema(DesktopFile& d) {
    d.exec(
        "CREATE TABLE jobs (job_id INTEGER, title VARCHAR(40), amount NUMERIC, rate REAL, done BOOLEAN, "
        "created DATETIME, due DATE, started INTEGER, closed REAL, photo BLOB)");
    tgt().exec(
        "CREATE TABLE jobs (job_id int PRIMARY KEY, title varchar(40), amount numeric(12,2), rate float8, "
        "done boolean, created timestamp, due date, started timestamptz, closed timestamp, photo bytea, "
        "source char(1) NOT NULL DEFAULT 'D')");
  }
  static std::string jobs_yaml() {
    return "  - { name: jobs, key: [job_id] }\n";
  }
  std::string owner() const { return "owner: { column: source, value: D }\n"; }

  std::filesystem::path dir_;
  static inline int counter_ = 0;
};

TEST_F(SqliteSource, EveryStorageClassConvertsToTheTargetTypeByteForByte) {
  DesktopFile d(file("desktop.db"));
  jobs_schema(d);
  // ISO text, Unix seconds (INTEGER) and a Julian day number (REAL) for date-times;
  // 0/1 booleans; text in an integer column; non-ASCII, tab, newline, backslash, quote.
  d.exec(
      "INSERT INTO jobs VALUES "
      "(1, 'Müller & Søn ☃', 12.5, 0.1, 1, '2024-02-29 13:14:15', '2024-03-01', 1700000000, 2460000.5, "
      "X'00FF10'),"
      "('2', 'tab\there' || char(10) || 'newline \\ back''quote', '7', 3, 0, '2024-01-02T03:04:05.250', "
      "'2023-12-31', 0, 2451545.0, NULL),"
      "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '')");
  std::string cfg = config(d.path(), jobs_yaml(), owner());
  auto s = sync(cfg);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(count("SELECT count(*) FROM jobs"), 3);
  EXPECT_EQ(column("SELECT title FROM jobs WHERE job_id = 1").at(0), "Müller & Søn ☃");
  EXPECT_EQ(column("SELECT title FROM jobs WHERE job_id = 2").at(0), "tab\there\nnewline \\ back'quote");
  EXPECT_EQ(column("SELECT amount::text || '|' || rate::text || '|' || done::text FROM jobs WHERE job_id = 1").at(0),
            "12.50|0.1|true");
  EXPECT_EQ(column("SELECT amount::text || '|' || rate::text || '|' || done::text FROM jobs WHERE job_id = 2").at(0),
            "7.00|3|false");
  EXPECT_EQ(column("SELECT created::text || '|' || due::text || '|' || closed::text FROM jobs WHERE job_id = 1").at(0),
            "2024-02-29 13:14:15|2024-03-01|2023-02-25 00:00:00");
  EXPECT_EQ(column("SELECT created::text || '|' || closed::text FROM jobs WHERE job_id = 2").at(0),
            "2024-01-02 03:04:05.25|2000-01-01 12:00:00");
  EXPECT_EQ(column("SELECT (started AT TIME ZONE 'UTC')::text FROM jobs WHERE job_id = 1").at(0),
            "2023-11-14 22:13:20");
  EXPECT_EQ(column("SELECT encode(photo, 'hex') FROM jobs WHERE job_id = 1").at(0), "00ff10");
  EXPECT_EQ(count("SELECT count(*) FROM jobs WHERE job_id = 3 AND title IS NULL AND photo = ''::bytea"), 1);
  // The second run of the same file writes nothing, and verify agrees.
  std::string before = versions("jobs");
  EXPECT_EQ(sync(cfg, apply::Strategy::Merge, {}, false, "incremental").exit_code, 0);
  EXPECT_EQ(versions("jobs"), before);
  EXPECT_EQ(verify(cfg).exit_code, 0);
}

TEST_F(SqliteSource, AValueThatDoesNotConvertStopsTheRunNamingTableColumnRowidAndValue) {
  DesktopFile d(file("desktop.db"));
  jobs_schema(d);
  d.exec("INSERT INTO jobs (job_id, title) VALUES (1, 'fine'), (2, 'fine too')");
  std::string cfg = config(d.path(), jobs_yaml(), owner());
  ASSERT_EQ(sync(cfg).exit_code, 0);
  std::string before = versions("jobs");
  d.exec("INSERT INTO jobs (job_id, title, amount) VALUES (3, 'new', 'twelve euros')");
  d.exec("UPDATE jobs SET title = 'changed' WHERE job_id = 1");
  for (const char* mode : {"full", "incremental"}) {
    CliResult r = cli({"sync", "--config", cfg, "--mode", mode});
    EXPECT_EQ(r.exit_code, 5) << mode << r.out << r.err;
    std::string all = r.out + r.err;
    EXPECT_NE(all.find("jobs"), std::string::npos) << all;
    EXPECT_NE(all.find("amount"), std::string::npos) << all;
    EXPECT_NE(all.find("rowid 3"), std::string::npos) << all;
    EXPECT_NE(all.find("twelve euros"), std::string::npos) << all;
    EXPECT_EQ(versions("jobs"), before) << "nothing may be applied (" << mode << ")";
  }
  // Non-UTF-8 text is reported, never mangled.
  d.exec("UPDATE jobs SET amount = 1 WHERE job_id = 3");
  d.exec("UPDATE jobs SET title = CAST(X'4DFC6C6C6572' AS TEXT) WHERE job_id = 2");
  CliResult r = cli({"sync", "--config", cfg});
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("title"), std::string::npos) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("UTF-8"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(versions("jobs"), before);
}

TEST_F(SqliteSource, IncrementalFindsInsertsUpdatesDeletesAndAChangedKeyAndAgreesWithFull) {
  DesktopFile d(file("desktop.db"));
  jobs_schema(d);
  d.exec(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
      "INSERT INTO jobs (job_id, title, amount, created) SELECT i, 'job ' || i, i * 1.5, "
      "'2024-01-01 00:00:00' FROM n");
  tgt().exec("INSERT INTO jobs (job_id, title, source) VALUES (900001, 'made on a phone', 'M')");
  std::string cfg = config(d.path(), jobs_yaml(), owner());
  ASSERT_EQ(sync(cfg).exit_code, 0);
  std::string mobile = content_of(tgt(), "jobs", {}, "source = 'M'");

  d.exec("INSERT INTO jobs (job_id, title) VALUES (5001, 'new'), (5002, 'newer')");
  d.exec("UPDATE jobs SET title = 'renamed' WHERE job_id IN (10, 11, 12)");
  d.exec("DELETE FROM jobs WHERE job_id IN (20, 21)");
  d.exec("UPDATE jobs SET job_id = 7000 WHERE job_id = 30");  // a changed key: a delete and an insert
  auto s = incremental(cfg);
  ASSERT_EQ(s.exit_code, 0);
  ASSERT_EQ(s.tables.size(), 1u);
  const auto& t = s.tables.front();
  EXPECT_EQ(t.mode_used, "fingerprint") << t.reason;
  EXPECT_EQ(t.counts.read, 6) << "only the 2 new, 3 updated and 1 re-keyed rows cross the network";
  EXPECT_EQ(t.counts.inserted, 3);
  EXPECT_EQ(t.counts.updated, 3);
  EXPECT_EQ(t.counts.deleted, 3);
  std::string after_incremental = content("jobs");
  EXPECT_EQ(content_of(tgt(), "jobs", {}, "source = 'M'"), mobile) << "a row the sync does not own was touched";

  // A full sync of the same file finds nothing left to do.
  std::string before = versions("jobs");
  auto full = sync(cfg);
  EXPECT_EQ(full.tables.front().counts.inserted + full.tables.front().counts.updated +
                full.tables.front().counts.deleted,
            0);
  EXPECT_EQ(content("jobs"), after_incremental);
  EXPECT_EQ(versions("jobs"), before);

  // No change: nothing read, nothing written.
  auto again = incremental(cfg);
  EXPECT_EQ(again.tables.front().counts.read, 0);
  EXPECT_NE(again.tables.front().reason.find("digest"), std::string::npos)
      << "an unchanged table is proved so by its stored values' digest, without comparing keys: "
      << again.tables.front().reason;
  EXPECT_EQ(versions("jobs"), before);
  EXPECT_EQ(verify(cfg).exit_code, 0);
}

// A table without a key has no identity to follow row by row: it is read
// whole when it changed, and proved unchanged (nothing read, nothing written)
// by the sum of its rows' fingerprints and its row count when it did not.
TEST_F(SqliteSource, AKeylessTableIsReadOnlyWhenItChanged) {
  DesktopFile d(file("desktop.db"));
  d.exec("CREATE TABLE notes (body TEXT, n INTEGER)");
  d.exec("INSERT INTO notes VALUES ('a', 1), ('b', 2), ('b', 2), ('c', NULL)");
  tgt().exec("CREATE TABLE notes (body text, n int, source char(1) NOT NULL DEFAULT 'D')");
  std::string cfg = config(d.path(), "  - { name: notes, key: none }\n", owner());
  ASSERT_EQ(sync(cfg).exit_code, 0);
  std::string before = versions("notes");
  auto same = incremental(cfg);
  ASSERT_EQ(same.exit_code, 0);
  EXPECT_EQ(same.tables.front().counts.read, 0) << same.tables.front().reason;
  EXPECT_EQ(versions("notes"), before);

  // One more copy of a row that is there already: the multiset changed.
  d.exec("INSERT INTO notes VALUES ('b', 2)");
  auto more = incremental(cfg);
  EXPECT_EQ(more.tables.front().mode_used, "full") << more.tables.front().reason;
  EXPECT_EQ(more.tables.front().counts.read, 5);
  EXPECT_EQ(count("SELECT count(*) FROM notes WHERE body = 'b'"), 3);
  // A row gone.
  d.exec("DELETE FROM notes WHERE body = 'c'");
  ASSERT_EQ(incremental(cfg).exit_code, 0);
  EXPECT_EQ(count("SELECT count(*) FROM notes WHERE body = 'c'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM notes"), 4);
  EXPECT_EQ(verify(cfg).exit_code, 0);
}

TEST_F(SqliteSource, AnUntouchedFileIsProvedUnchangedByItsStampAndAnyWriteEndsThat) {
  for (std::string journal : {"wal", "delete"}) {
    SCOPED_TRACE(journal);
    DesktopFile d(file("stamp-" + journal + ".db"), journal);
    tgt().exec("DROP TABLE IF EXISTS jobs");
    jobs_schema(d);
    d.exec("INSERT INTO jobs (job_id, title) VALUES (1, 'a'), (2, 'b')");
    d.exec("CREATE TABLE notes (id INTEGER, body TEXT)");  // not synced: its writes still move the stamp
    std::string cfg = config(d.path(), jobs_yaml(), owner());
    std::filesystem::remove(file("stagesync.fingerprints"));
    // A file written less than 2 s before a run is "racy": its stamp is not trusted, the table is scanned.
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    ASSERT_EQ(sync(cfg).exit_code, 0);
    auto quiet = incremental(cfg);
    EXPECT_NE(quiet.tables.front().reason.find("untouched"), std::string::npos) << quiet.tables.front().reason;
    // The same value written again (same size, same page) is still a write: the stamp moves, the values are compared.
    d.exec("UPDATE jobs SET title = 'c' WHERE job_id = 2");
    auto changed = incremental(cfg);
    EXPECT_EQ(changed.tables.front().counts.updated, 1) << changed.tables.front().reason;
    EXPECT_EQ(column("SELECT title FROM jobs WHERE job_id = 2").at(0), "c");
    // A write to a table the sync does not read moves the stamp too; the digest then proves `jobs` unchanged.
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    d.exec("INSERT INTO notes VALUES (1, 'x')");
    auto other = incremental(cfg);
    EXPECT_NE(other.tables.front().reason.find("digest"), std::string::npos) << other.tables.front().reason;
    EXPECT_EQ(other.tables.front().counts.read, 0);
  }
}

TEST_F(SqliteSource, FingerprintsOfAnotherRunAreNotTrusted) {
  DesktopFile d(file("desktop.db"));
  jobs_schema(d);
  d.exec("INSERT INTO jobs (job_id, title) VALUES (1, 'a'), (2, 'b')");
  std::string cfg = config(d.path(), jobs_yaml(), owner());
  ASSERT_EQ(sync(cfg).exit_code, 0);
  // Another machine (no fingerprints here) or a lost cache: the table is read whole, once.
  std::filesystem::remove(file("stagesync.fingerprints"));
  d.exec("DELETE FROM jobs WHERE job_id = 2");
  auto s = incremental(cfg);
  EXPECT_EQ(s.tables.front().mode_used, "full") << s.tables.front().reason;
  EXPECT_EQ(s.tables.front().counts.deleted, 1);
  // A target whose last run is not the one the fingerprints belong to (another machine synced it).
  std::filesystem::copy_file(file("stagesync.fingerprints"), file("saved.fingerprints"));
  d.exec("INSERT INTO jobs (job_id, title) VALUES (3, 'c')");
  ASSERT_EQ(incremental(cfg).tables.front().mode_used, "fingerprint");
  std::filesystem::copy_file(file("saved.fingerprints"), file("stagesync.fingerprints"),
                             std::filesystem::copy_options::overwrite_existing);
  tgt().exec("DELETE FROM jobs WHERE job_id = 3");  // as if that run had never happened here
  auto again = incremental(cfg);
  EXPECT_EQ(again.tables.front().mode_used, "full") << again.tables.front().reason;
  EXPECT_EQ(count("SELECT count(*) FROM jobs WHERE job_id = 3"), 1);
}

TEST_F(SqliteSource, CheckNamesAMissingTableAColumnAndAFileThatIsNotADatabase) {
  DesktopFile d(file("desktop.db"));
  jobs_schema(d);
  tgt().exec("CREATE TABLE clients (client_id int PRIMARY KEY, name text)");
  std::string cfg = config(d.path(), jobs_yaml() + "  - { name: clients, key: [client_id] }\n", owner());
  CliResult r = cli({"check", "--config", cfg});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("clients"), std::string::npos) << r.out << r.err;
  d.exec("CREATE TABLE clients (client_id INTEGER)");  // no `name`: the target column stays unfilled, fine
  d.exec("ALTER TABLE clients ADD COLUMN nickname TEXT");
  r = cli({"check", "--config", cfg});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("nickname"), std::string::npos) << r.out << r.err;

  std::ofstream(file("notes.db")) << "these are not the droids you are looking for\n";
  r = cli({"check", "--config", config(file("notes.db"), jobs_yaml(), owner())});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("notes.db"), std::string::npos) << r.out << r.err;
  r = cli({"sync", "--config", config(file("missing.db"), jobs_yaml(), owner())});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("missing.db"), std::string::npos) << r.out << r.err;
}

TEST_F(SqliteSource, ReferenceDataIncrementalEndsWhereFullWouldOverSeededRounds) {
  // The reference desktop (orphans, duplicates, NULL keys, lookups, references) as a SQLite file.
  for (const auto& sql : demo::desktop_schema_sql()) src().exec(sql);
  for (const auto& sql : demo::desktop_data_sql(0.05, 7)) src().exec(sql);
  std::string db = file("reference.db");
  demo::write_sqlite_desktop(src(), db, "wal");
  for (const auto& sql : demo::cloud_schema_sql()) tgt().exec(sql);
  for (const auto& sql : demo::cloud_mobile_rows_sql(7)) tgt().exec(sql);
  std::string cfg = file("reference.yaml");
  std::ofstream(cfg) << demo::sqlite_demo_config(target_url(), db);
  std::string mobile = column(
      "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (SELECT j::text x FROM jobshead j WHERE source <> 'D' "
      "UNION ALL SELECT c::text FROM climaster c WHERE source <> 'D' UNION ALL SELECT r::text FROM reminder r "
      "WHERE source <> 'D') y").at(0);
  ASSERT_EQ(sync(cfg).exit_code, 0);
  int rounds = env_int("STAGESYNC_SQLITE_ROUNDS", 3);
  for (int round = 1; round <= rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    DesktopFile::apply(db, demo::sqlite_desktop_changes(static_cast<uint64_t>(round)));
    auto s = incremental(cfg);
    ASSERT_EQ(s.exit_code, 0);
    int64_t read = 0, rows = 0;
    for (const auto& t : s.tables) {
      read += t.counts.read;
      rows += t.source_rows;
      if (t.target == "jobtasks") {
        EXPECT_EQ(t.mode_used, "fingerprint") << t.reason;
      }
    }
    EXPECT_LT(read * 4, rows) << "an incremental run read most rows again";
    // It ends where a full sync would: verify stages every row and compares the owned rows.
    EXPECT_EQ(verify(cfg).exit_code, 0);
    std::string before = versions("jobtasks") + versions("jobshead") + versions("climaster");
    auto again = incremental(cfg);
    int64_t written = 0, read_again = 0;
    for (const auto& t : again.tables) {
      written += t.counts.inserted + t.counts.updated + t.counts.deleted;
      read_again += t.counts.read;
    }
    EXPECT_EQ(written, 0);
    EXPECT_EQ(read_again, 0);
    EXPECT_EQ(versions("jobtasks") + versions("jobshead") + versions("climaster"), before);
  }
  EXPECT_EQ(column("SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (SELECT j::text x FROM jobshead j WHERE source "
                   "<> 'D' UNION ALL SELECT c::text FROM climaster c WHERE source <> 'D' UNION ALL SELECT r::text "
                   "FROM reminder r WHERE source <> 'D') y")
                .at(0),
            mobile);
}

// The desktop application: commits small transactions to the file until
// told to stop; reports how many and its longest wait for a commit.
struct Writer {
  pid_t pid = -1;
  int report = -1;  // read end of its report pipe
  Writer(const std::string& path, int first_id) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    pid = fork();
    if (pid == 0) {
      close(fds[0]);
      sqlite3* db = nullptr;
      sqlite3_open(path.c_str(), &db);
      sqlite3_busy_timeout(db, 30000);
      int64_t commits = 0;
      double longest = 0;
      static volatile sig_atomic_t stopping = 0;
      signal(SIGTERM, [](int) { stopping = 1; });
      for (int id = first_id; !stopping; ++id) {
        auto t0 = std::chrono::steady_clock::now();
        std::string sql = "BEGIN IMMEDIATE; INSERT INTO jobs (job_id, title) VALUES (" + std::to_string(id) +
                          ", 'written during the sync'); UPDATE jobs SET title = 'touched " + std::to_string(id) +
                          "' WHERE job_id = " + std::to_string(1 + id % 500) + "; COMMIT;";
        if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
          sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
          continue;
        }
        longest = std::max(longest, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        ++commits;
        usleep(2000);
      }
      sqlite3_close(db);
      std::string line = std::to_string(commits) + " " + std::to_string(longest) + "\n";
      if (write(fds[1], line.data(), line.size()) < 0) _exit(2);
      _exit(0);
    }
    close(fds[1]);
    report = fds[0];
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer() {
    if (pid > 0) stop();
  }
  // Stops it: (commits, longest commit wait in seconds).
  std::pair<int64_t, double> stop() {
    if (pid <= 0) return {0, 99};
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    char buf[128] = {0};
    ssize_t n = read(report, buf, sizeof buf - 1);
    close(report);
    int64_t commits = 0;
    double longest = 99;
    if (n > 0) sscanf(buf, "%ld %lf", &commits, &longest);
    return {commits, longest};
  }
};

TEST_F(SqliteSource, TheDesktopKeepsWritingAndEveryCommitArrivesByTheNextRun) {
  for (std::string journal : {"wal", "delete"}) {
    SCOPED_TRACE(journal);
    DesktopFile d(file("desktop-" + journal + ".db"), journal);
    tgt().exec("DROP TABLE IF EXISTS jobs");
    jobs_schema(d);
    d.exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000) "
        "INSERT INTO jobs (job_id, title, amount, created, photo) SELECT i, 'job ' || i, i * 1.5, "
        "'2024-01-01 00:00:00', randomblob(64) FROM n");
    std::string cfg = config(d.path(), jobs_yaml(), owner());
    std::filesystem::remove(file("stagesync.fingerprints"));
    Writer w(d.path(), 100000);
    for (const char* mode : {"full", "incremental", "incremental", "full"}) {
      auto s = sync(cfg, apply::Strategy::Merge, {}, false, mode);
      EXPECT_EQ(s.exit_code, 0) << mode;
    }
    auto [commits, longest] = w.stop();
    EXPECT_GT(commits, 10) << "the writer must have committed during the syncs";
    EXPECT_LT(longest, 1.0) << "a desktop commit waited " << longest << " s for the sync";
    // Every committed change arrives by the next run, and incremental agrees with the file.
    auto s = incremental(cfg);
    EXPECT_EQ(s.exit_code, 0);
    EXPECT_EQ(verify(cfg).exit_code, 0);
    EXPECT_EQ(count("SELECT count(*) FROM jobs WHERE job_id >= 100000"), commits);
  }
}

TEST_F(SqliteSource, KillDuringASyncLeavesTheTargetBeforeOrAfter) {
  DesktopFile d(file("desktop.db"));
  jobs_schema(d);
  d.exec(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000) "
      "INSERT INTO jobs (job_id, title, amount, created) SELECT i, 'job ' || i, i, '2024-01-01 00:00:00' FROM n");
  std::string cfg = config(d.path(), jobs_yaml(), owner());
  ASSERT_EQ(sync(cfg).exit_code, 0);
  unsigned seed = static_cast<unsigned>(env_int("STAGESYNC_SQLITE_KILL_SEED", 1414));
  std::mt19937 rng(seed);
  int trials = env_int("STAGESYNC_SQLITE_KILL_TRIALS", 8);
  int before_seen = 0, after_seen = 0;
  for (int trial = 0; trial < trials; ++trial) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " trial " + std::to_string(trial));
    std::string before = content("jobs");
    d.exec("UPDATE jobs SET amount = amount + 1 WHERE job_id % 7 = " + std::to_string(trial % 7));
    d.exec("DELETE FROM jobs WHERE job_id % 997 = " + std::to_string(trial));
    d.exec("INSERT INTO jobs (job_id, title) VALUES (" + std::to_string(50000 + trial) + ", 'new')");
    pid_t pid = spawn({"sync", "--config", cfg, "--mode", trial % 2 ? "incremental" : "full"});
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 900)(rng)));
    kill(pid, SIGKILL);
    wait_exit(pid);
    std::string now = content("jobs");
    // After: what a full sync makes of the file. Found by syncing now (it converges).
    ASSERT_EQ(sync(cfg, apply::Strategy::Merge, {}, false, "incremental").exit_code, 0);
    std::string after = content("jobs");
    EXPECT_TRUE(now == before || now == after) << "the target table is neither as before nor as after";
    (now == before ? before_seen : after_seen)++;
    EXPECT_EQ(verify(cfg).exit_code, 0);
  }
  std::cout << "kills: " << before_seen << " before, " << after_seen << " after (seed " << seed << ")\n";
}

}  // namespace
}  // namespace stagesync::testing
