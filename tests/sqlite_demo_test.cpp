// The reference desktop as a SQLite file (demo/sqlite_desktop.h), against a real PostgreSQL desktop filled
// with the reference data: every table and row arrives, each value in its documented storage (read back with
// SQLite's own date functions it is the PostgreSQL value), text byte for byte, the file is sound and in the
// requested journal mode, an existing file is never overwritten, and the demo's change statements apply.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "demo/reference_data.h"
#include "demo/sqlite_desktop.h"
#include "support/sync_fixture.h"

namespace stagesync::testing {
namespace {

constexpr double kScale = 0.1;
constexpr uint64_t kSeed = 11;
const char* const kNull = "\\N";

// A SQLite file opened by the test itself (not through stagesync): rows as text, NULL as \N.
class SqliteFile {
 public:
  explicit SqliteFile(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db_);
    }
  }
  ~SqliteFile() { sqlite3_close_v2(db_); }
  SqliteFile(const SqliteFile&) = delete;
  SqliteFile& operator=(const SqliteFile&) = delete;

  std::vector<std::vector<std::string>> rows(const std::string& sql) {
    std::vector<std::vector<std::string>> out;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db_) << " in: " << sql;
      return out;
    }
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int c = 0; c < sqlite3_column_count(s); ++c) {
        const unsigned char* v = sqlite3_column_text(s, c);
        row.push_back(v ? std::string(reinterpret_cast<const char*>(v), sqlite3_column_bytes(s, c)) : kNull);
      }
      out.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) ADD_FAILURE() << sqlite3_errmsg(db_) << " in: " << sql;
    sqlite3_finalize(s);
    return out;
  }
  std::string text(const std::string& sql) {
    auto r = rows(sql);
    return r.empty() ? "" : r[0][0];
  }
  int64_t count(const std::string& sql) { return std::stoll(text(sql)); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      ADD_FAILURE() << (err ? err : "?") << " in: " << sql;
      sqlite3_free(err);
    }
  }

 private:
  sqlite3* db_ = nullptr;
};

std::vector<std::string> joined(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::string> out;
  for (const auto& row : rows) {
    std::string line;
    for (const auto& v : row) line += v + '\x1f';
    out.push_back(line);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class SqliteDemo : public SyncFixture {
 protected:
  void SetUp() override {
    for (const auto& sql : demo::desktop_schema_sql()) src().exec(sql);
    for (const auto& sql : demo::desktop_data_sql(kScale, kSeed)) src().exec(sql);
    dir_ = std::filesystem::temp_directory_path() / ("sqlite_demo_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The fixture's count() and column() read the target; these read the PostgreSQL desktop.
  int64_t desktop_count(const std::string& sql) { return src().exec(sql).int64(0, 0); }
  std::vector<std::string> desktop_column(const std::string& sql) {
    pg::Result r = src().exec(sql);
    std::vector<std::string> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.text(i, 0));
    return out;
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::vector<std::string> pg_tables() {
    return desktop_column(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname");
  }

  // Every row of `table` in both databases as canonical text: the file's values turned back through SQLite's
  // own functions as the header documents (Unix seconds, Julian days, numerics), PostgreSQL's as ISO text.
  void expect_same_rows(SqliteFile& file, const std::string& table) {
    auto info = file.rows("SELECT name, type FROM pragma_table_info('" + table + "') ORDER BY cid");
    std::vector<std::string> pg_columns = desktop_column("SELECT attname FROM pg_attribute WHERE attrelid = '" + table +
                                                         "'::regclass AND attnum > 0 "
                                                         "AND NOT attisdropped ORDER BY attnum");
    ASSERT_EQ(info.size(), pg_columns.size()) << table;
    std::string lite, pg;
    for (size_t i = 0; i < info.size(); ++i) {
      const std::string& name = info[i][0];
      const std::string& type = info[i][1];
      ASSERT_EQ(name, pg_columns[i]) << table;
      bool stamp = name == "created_at" || name == "updated_at";
      std::string e = "\"" + name + "\"";
      if (stamp && type == "INTEGER") e = "datetime(" + e + ", 'unixepoch')";
      if (stamp && type == "REAL") e = "datetime(" + e + ")";
      if (type.rfind("NUMERIC(", 0) == 0) {
        e = "CASE WHEN " + e + " IS NOT NULL THEN printf('%." + type.substr(type.find(',') + 1, 1) + "f', " + e +
            ") END";
      }
      lite += (i ? ", " : "") + e;
      pg += std::string(i ? ", " : "") + "\"" + name + "\"::text";
    }
    std::vector<std::vector<std::string>> pg_rows;
    pg::Result r = src().exec("SELECT " + pg + " FROM " + table);
    for (int row = 0; row < r.rows(); ++row) {
      std::vector<std::string> values;
      for (int c = 0; c < r.columns(); ++c) values.push_back(r.is_null(row, c) ? kNull : r.text(row, c));
      pg_rows.push_back(std::move(values));
    }
    std::vector<std::string> a = joined(file.rows("SELECT " + lite + " FROM \"" + table + "\"")), b = joined(pg_rows);
    ASSERT_EQ(a.size(), b.size()) << table;
    auto diff = std::mismatch(a.begin(), a.end(), b.begin());
    EXPECT_TRUE(diff.first == a.end()) << table << ": first difference\n  sqlite:     " << *diff.first
                                       << "\n  postgresql: " << *diff.second;
  }

  std::filesystem::path dir_;
};

TEST_F(SqliteDemo, WalFileHoldsEveryRowInItsDocumentedStorage) {
  std::string file_path = path("desktop.sqlite");
  std::map<std::string, int64_t> written = demo::write_sqlite_desktop(src(), file_path, "wal");

  std::vector<std::string> tables = pg_tables();
  ASSERT_EQ(written.size(), tables.size());
  SqliteFile file(file_path);
  EXPECT_EQ(file.text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(file.text("PRAGMA journal_mode"), "wal");
  for (const auto& t : tables) {
    int64_t rows = desktop_count("SELECT count(*) FROM " + t);
    EXPECT_EQ(written[t], rows) << t;
    EXPECT_EQ(file.count("SELECT count(*) FROM \"" + t + "\""), rows) << t;
    expect_same_rows(file, t);
  }
  EXPECT_EQ(written["workdiary"], 0);
  EXPECT_EQ(written["learequest"], 0);
  EXPECT_GT(written["jobtasks"], 6000);

  // Declared types and storage classes, as the header documents them.
  auto type_of = [&](const std::string& t, const std::string& c) {
    return file.text("SELECT type FROM pragma_table_info('" + t + "') WHERE name = '" + c + "'");
  };
  EXPECT_EQ(type_of("jobtasks", "updated_at"), "INTEGER");
  EXPECT_EQ(type_of("mbreminder", "created_at"), "REAL");
  EXPECT_EQ(type_of("climaster", "updated_at"), "DATETIME");
  EXPECT_EQ(type_of("jobshead", "jobdate"), "DATE");
  EXPECT_EQ(type_of("jobtasks", "actual_hours"), "NUMERIC(8,2)");
  EXPECT_EQ(type_of("climaster", "client_name"), "VARCHAR(100)");
  EXPECT_EQ(type_of("workdiary", "source"), "CHAR(1)");
  EXPECT_EQ(file.count("SELECT count(*) FROM jobtasks WHERE typeof(updated_at) <> 'integer' OR "
                       "typeof(created_at) <> 'integer'"),
            0);
  EXPECT_EQ(file.count("SELECT count(*) FROM mbreminder WHERE typeof(updated_at) <> 'real'"), 0);
  EXPECT_EQ(
      file.count("SELECT count(*) FROM jobshead WHERE typeof(updated_at) <> 'text' OR "
                 "updated_at NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]'"),
      0);
  EXPECT_EQ(file.count("SELECT count(*) FROM climaster WHERE typeof(client_id) <> 'integer'"), 0);
  // Julian days exactly as julianday() computes them for the ISO text, Unix seconds as strftime('%s').
  EXPECT_EQ(file.count("SELECT count(*) FROM mbreminder WHERE updated_at <> julianday(datetime(updated_at))"), 0);
  EXPECT_EQ(file.count("SELECT count(*) FROM jobtasks WHERE updated_at <> "
                       "CAST(strftime('%s', datetime(updated_at, 'unixepoch')) AS INTEGER)"),
            0);

  // Text byte for byte: quotes, tabs, newlines, non-ASCII (the row comparison above covers every value;
  // these make sure the data really has them).
  EXPECT_EQ(file.text("SELECT task_notes FROM jobtasks WHERE instr(task_notes, char(10)) > 0 LIMIT 1"),
            "Waiting for bank statement\nsecond line of the note");
  EXPECT_EQ(file.text("SELECT task_notes FROM jobtasks WHERE instr(task_notes, char(9)) > 0 LIMIT 1"),
            "Tab\tseparated remark");
  EXPECT_EQ(file.text("SELECT task_notes FROM jobtasks WHERE instr(task_notes, '\\') > 0 LIMIT 1"),
            "Path C:\\Clients\\2023 checked");
  int64_t quoted = desktop_count("SELECT count(*) FROM climaster WHERE strpos(client_name, '''') > 0");
  EXPECT_GT(quoted, 0);
  EXPECT_EQ(file.count("SELECT count(*) FROM climaster WHERE instr(client_name, '''') > 0"), quoted);
  int64_t lodz = desktop_count("SELECT count(*) FROM climaster WHERE city = E'\\u0141\\u00F3d\\u017A'");
  EXPECT_GT(lodz, 0);
  EXPECT_EQ(file.count("SELECT count(*) FROM climaster WHERE hex(city) = 'C581C3B364C5BA'"), lodz) << "Łódź in UTF-8";

  // An existing file is never overwritten (nor touched).
  auto size = std::filesystem::file_size(file_path);
  EXPECT_THROW(demo::write_sqlite_desktop(src(), file_path, "wal"), demo::SqliteDesktopError);
  EXPECT_EQ(std::filesystem::file_size(file_path), size);
  EXPECT_EQ(file.count("SELECT count(*) FROM jobtasks"), written["jobtasks"]);
}

TEST_F(SqliteDemo, DeleteJournalFileStoresBooleansAndBlobs) {
  // A desktop table with the types the reference schema lacks.
  src().exec(
      "CREATE TABLE gadgets (id integer, flag boolean, photo bytea, weight double precision, "
      "seen timestamptz, code char(3))");
  src().exec(
      "INSERT INTO gadgets VALUES (1, true, '\\x00ff0a09275c', 0.1, '2024-03-01 10:00:00+05:30', 'ab'), "
      "(2, false, '\\x', -1e300, NULL, NULL), (3, NULL, NULL, NULL, '2024-03-01 00:00:00.25+00', 'xyz')");
  std::string file_path = path("desktop.db");
  EXPECT_THROW(demo::write_sqlite_desktop(src(), file_path, "memory"), demo::SqliteDesktopError);
  EXPECT_FALSE(std::filesystem::exists(file_path));

  // A type without a SQLite form here stops the write, naming the column; the half-made file is removed and
  // the desktop session is usable again.
  src().exec("CREATE TABLE oddities (span interval)");
  try {
    demo::write_sqlite_desktop(src(), file_path, "delete");
    ADD_FAILURE() << "an interval column was written";
  } catch (const demo::SqliteDesktopError& e) {
    EXPECT_NE(std::string(e.what()).find("oddities.span"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(file_path));
  src().exec("DROP TABLE oddities");

  std::map<std::string, int64_t> written = demo::write_sqlite_desktop(src(), file_path, "delete");
  EXPECT_EQ(written["gadgets"], 3);
  EXPECT_FALSE(std::filesystem::exists(file_path + "-journal"));
  SqliteFile file(file_path);
  EXPECT_EQ(file.text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(file.text("PRAGMA journal_mode"), "delete");
  for (const auto& t : {"climaster", "jobshead", "mbremdetail"}) {
    EXPECT_EQ(file.count(std::string("SELECT count(*) FROM ") + t),
              desktop_count(std::string("SELECT count(*) FROM ") + t));
  }
  auto rows = file.rows(
      "SELECT id, typeof(flag), flag, typeof(photo), hex(photo), weight = 0.1, weight = -1e300, "
      "seen, code FROM gadgets ORDER BY id");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "integer", "1", "blob", "00FF0A09275C", "1", "0",
                                               "2024-03-01 04:30:00", "ab "}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"2", "integer", "0", "blob", "", "0", "1", kNull, kNull}));
  EXPECT_EQ(rows[2],
            (std::vector<std::string>{"3", "null", kNull, "null", "", kNull, kNull, "2024-03-01 00:00:00.25", "xyz"}));
  EXPECT_EQ(file.text("SELECT type FROM pragma_table_info('gadgets') WHERE name = 'flag'"), "BOOLEAN");
  EXPECT_EQ(file.text("SELECT type FROM pragma_table_info('gadgets') WHERE name = 'photo'"), "BLOB");
}

TEST_F(SqliteDemo, ChangeStatementsInsertUpdateDeleteAndChangeKeys) {
  EXPECT_EQ(demo::sqlite_desktop_changes(kSeed), demo::sqlite_desktop_changes(kSeed));
  EXPECT_NE(demo::sqlite_desktop_changes(kSeed), demo::sqlite_desktop_changes(kSeed + 1));
  std::string file_path = path("desktop.sqlite");
  demo::write_sqlite_desktop(src(), file_path, "wal");
  SqliteFile file(file_path);
  auto ids = [&](const std::string& sql) {
    std::set<std::string> out;
    for (const auto& r : file.rows(sql)) out.insert(r[0]);
    return out;
  };
  std::set<std::string> clients = ids("SELECT client_id FROM climaster");
  std::set<std::string> details = ids("SELECT remdetid FROM mbremdetail");
  std::map<std::string, std::string> task_of;  // jt_id -> task_id
  for (const auto& r : file.rows("SELECT jt_id, task_id FROM jobtasks")) task_of[r[0]] = r[1];
  int64_t max_detail = file.count("SELECT max(remdetid) FROM mbremdetail");
  int64_t jobs = file.count("SELECT count(*) FROM jobshead"), tasks = file.count("SELECT count(*) FROM jobtasks");
  int64_t checklist = file.count("SELECT count(*) FROM taskchecklist");
  int64_t reminders = file.count("SELECT count(*) FROM mbreminder");
  std::string max_task_stamp = file.text("SELECT max(updated_at) FROM jobtasks");

  file.exec("BEGIN");
  for (const auto& sql : demo::sqlite_desktop_changes(kSeed)) file.exec(sql);
  file.exec("COMMIT");
  EXPECT_EQ(file.text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(file.count("SELECT count(*) FROM sqlite_master WHERE name LIKE 'stagesync%'"), 0);

  // One client (id > 11) gone with its jobs and their tasks; five new ones above every id.
  std::set<std::string> after = ids("SELECT client_id FROM climaster");
  std::vector<std::string> gone, added;
  std::set_difference(clients.begin(), clients.end(), after.begin(), after.end(), std::back_inserter(gone));
  std::set_difference(after.begin(), after.end(), clients.begin(), clients.end(), std::back_inserter(added));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_GT(std::stoll(gone[0]), 11);
  EXPECT_EQ(added.size(), 5u);
  EXPECT_EQ(file.count("SELECT count(*) FROM jobshead WHERE client_id = " + gone[0]), 0);
  std::string victim_job_ids =
      src().exec("SELECT string_agg(DISTINCT job_id::text, ',') FROM jobshead WHERE client_id = " + gone[0]).text(0, 0);
  ASSERT_FALSE(victim_job_ids.empty());
  EXPECT_EQ(file.count("SELECT count(*) FROM jobtasks WHERE job_id IN (" + victim_job_ids + ")"), 0);
  int64_t victim_jobs = desktop_count("SELECT count(*) FROM jobshead WHERE client_id = " + gone[0]);
  EXPECT_GT(victim_jobs, 0);
  EXPECT_EQ(file.count("SELECT count(*) FROM jobshead"), jobs - victim_jobs + 20);
  EXPECT_EQ(file.count("SELECT count(*) FROM jobtasks WHERE task_status = 'Not Started' AND job_id IN "
                       "(SELECT job_id FROM jobshead WHERE job_uid LIKE 'J/2025/NEW-%')"),
            40);
  int64_t tasks_after = file.count("SELECT count(*) FROM jobtasks");
  EXPECT_LT(tasks_after, tasks + 40) << "about 0.25% of the tasks are deleted";
  EXPECT_GT(tasks_after, tasks * 99 / 100);

  // Updates, each with updated_at in its column's storage.
  EXPECT_EQ(file.text("SELECT client_name FROM climaster WHERE client_id = 7"), "Zoë Łódź-Müller & Söhne (日本語メモ)");
  EXPECT_GT(file.count("SELECT count(*) FROM jobshead WHERE work_desc LIKE '% – reviewed' AND typeof(updated_at) = "
                       "'text' AND updated_at > '2025'"),
            0);
  EXPECT_GT(file.count("SELECT count(*) FROM jobtasks WHERE typeof(updated_at) = 'integer' AND updated_at > " +
                       max_task_stamp + " AND task_status = 'Completed'"),
            0);
  EXPECT_EQ(file.count("SELECT count(*) FROM mbreminder WHERE rem_id = 3 AND remstatus = 'Done' AND "
                       "typeof(updated_at) = 'real' AND updated_at > julianday('2025-01-01')"),
            1);
  EXPECT_GT(file.count("SELECT count(*) FROM taskchecklist WHERE checkdate = '2025-01-10'"), 0);
  EXPECT_EQ(file.count("SELECT count(*) FROM taskchecklist"), checklist + 3);
  EXPECT_EQ(file.count("SELECT count(*) FROM mbreminder"), reminders + 1);

  // Keys that changed: one remdetid (of an existing reminder) renumbered, one task moved to an unused task_id.
  std::set<std::string> details_after = ids("SELECT remdetid FROM mbremdetail");
  std::vector<std::string> renumbered;
  std::set_difference(details.begin(), details.end(), details_after.begin(), details_after.end(),
                      std::back_inserter(renumbered));
  ASSERT_EQ(renumbered.size(), 1u);
  EXPECT_EQ(desktop_count("SELECT count(*) FROM mbremdetail d JOIN mbreminder r USING (rem_id) WHERE d.remdetid = " +
                          renumbered[0]),
            1);
  EXPECT_EQ(file.count("SELECT count(*) FROM mbremdetail WHERE remdetid = " + std::to_string(max_detail + 1000)), 1);
  EXPECT_EQ(file.text("SELECT remdetnotes FROM mbremdetail WHERE remdetid = " + std::to_string(max_detail + 1002)),
            "Notiz 2: O'Brien\tzurückrufen\nzweite Zeile");
  int moved = 0;
  for (const auto& r : file.rows("SELECT jt_id, task_id, job_id FROM jobtasks")) {
    auto before = task_of.find(r[0]);
    if (before == task_of.end() || before->second == r[1]) continue;
    ++moved;
    EXPECT_EQ(file.count("SELECT count(*) FROM jobtasks WHERE job_id = " + r[2] + " AND task_id = " + r[1]), 1);
  }
  EXPECT_EQ(moved, 1);
}

TEST_F(SqliteDemo, ConfigurationNamesTheFileAndTheSameTables) {
  config::Config pg = config::load_config(write_config(demo::demo_config_yaml(source_url(), target_url())));
  config::Config lite =
      config::load_config(write_config(demo::sqlite_demo_config(target_url(), "/data/office's desktop.sqlite")));
  EXPECT_EQ(lite.source.sqlite, "/data/office's desktop.sqlite");
  EXPECT_TRUE(lite.source.url.empty());
  EXPECT_EQ(lite.source.timezone, "UTC");
  EXPECT_EQ(lite.target.url, target_url());
  ASSERT_EQ(lite.tables.size(), pg.tables.size());
  for (size_t i = 0; i < pg.tables.size(); ++i) {
    EXPECT_EQ(lite.tables[i].name, pg.tables[i].name);
    EXPECT_EQ(lite.tables[i].key, pg.tables[i].key);
    EXPECT_EQ(lite.tables[i].lookups.size(), pg.tables[i].lookups.size());
    EXPECT_EQ(lite.tables[i].references.size(), pg.tables[i].references.size());
  }
  EXPECT_EQ(lite.owner.column, pg.owner.column);
  EXPECT_FALSE(pg.reverse.empty());
  EXPECT_TRUE(lite.reverse.empty()) << "stagesync never writes a SQLite file";
}

}  // namespace
}  // namespace stagesync::testing
