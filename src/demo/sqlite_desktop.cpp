// The reference desktop as a SQLite file (see sqlite_desktop.h).
#include "demo/sqlite_desktop.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "demo/reference_data.h"
#include "pg/copy_stream.h"

namespace stagesync::demo {
namespace {

// ---------------------------------------------------------------------------------------------
// Storage: what each column becomes in the file

enum class Storage { Integer, Real, Text, Blob };

struct FileColumn {
  std::string name;
  std::string declared;  // SQLite declared type
  Storage storage;
  std::string select;  // PostgreSQL expression giving the stored value as text
};

struct FileTable {
  std::string name;
  std::vector<FileColumn> columns;
};

// Date-time columns not stored as ISO text (the header's list).
enum class Clock { Iso, UnixSeconds, JulianDay };
Clock clock_of(const std::string& table, const std::string& column) {
  bool stamp = column == "created_at" || column == "updated_at";
  if (stamp && table == "jobtasks") return Clock::UnixSeconds;
  if (stamp && table == "mbreminder") return Clock::JulianDay;
  return Clock::Iso;
}

// The default an application gives a created_at/updated_at column, in its storage.
std::string stamp_default(Clock clock) {
  switch (clock) {
    case Clock::UnixSeconds:
      return " DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))";
    case Clock::JulianDay:
      return " DEFAULT (julianday('now'))";
    case Clock::Iso:
      break;
  }
  return " DEFAULT CURRENT_TIMESTAMP";
}

// "(n)" from a type modifier as format_type() shows it ("character varying(100)" -> "(100)"), or "".
std::string modifier(const std::string& formatted) {
  size_t open = formatted.find('(');
  return open == std::string::npos ? "" : formatted.substr(open);
}

// One PostgreSQL column as the file stores it. `q` is the quoted column name. Throws for a type that has
// no SQLite form here (the reference schema has none).
FileColumn file_column(const std::string& table, const std::string& name, const std::string& q, const std::string& type,
                       const std::string& formatted) {
  if (type == "int2" || type == "int4" || type == "int8") return {name, "INTEGER", Storage::Integer, q};
  if (type == "bool") return {name, "BOOLEAN", Storage::Integer, q + "::int"};
  if (type == "float4" || type == "float8") return {name, "REAL", Storage::Real, q + "::float8"};
  if (type == "numeric") return {name, "NUMERIC" + modifier(formatted), Storage::Real, q + "::float8"};
  if (type == "varchar") return {name, "VARCHAR" + modifier(formatted), Storage::Text, q};
  if (type == "bpchar") return {name, "CHAR" + modifier(formatted), Storage::Text, q};
  if (type == "text") return {name, "TEXT", Storage::Text, q};
  if (type == "bytea") return {name, "BLOB", Storage::Blob, "encode(" + q + ", 'hex')"};
  if (type == "date") return {name, "DATE", Storage::Text, q + "::text"};
  if (type == "timestamp" || type == "timestamptz") {
    // The session runs with TimeZone UTC: a timestamptz is written as its UTC wall-clock time.
    std::string utc = type == "timestamp" ? q : "(" + q + " AT TIME ZONE 'UTC')";
    switch (clock_of(table, name)) {
      case Clock::UnixSeconds:
        return {name, "INTEGER", Storage::Integer, "floor(extract(epoch FROM " + utc + "))::int8"};
      case Clock::JulianDay:
        // julianday()'s own arithmetic: whole milliseconds since the Julian epoch, one division.
        return {name, "REAL", Storage::Real,
                "((round(extract(epoch FROM " + utc + ") * 1000))::int8 + 210866760000000)::float8 / 86400000::float8"};
      case Clock::Iso:
        break;
    }
    return {name, "DATETIME", Storage::Text, utc + "::text"};
  }
  throw SqliteDesktopError("sqlite desktop: " + table + "." + name + " has type " + formatted +
                           ", which this writer has no SQLite form for");
}

std::vector<FileTable> read_tables(pg::Connection& desktop) {
  pg::Result r = desktop.exec(
      "SELECT c.relname, a.attname, t.typname, format_type(a.atttypid, a.atttypmod) "
      "FROM pg_catalog.pg_class AS c "
      "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
      "JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid "
      "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
      "ORDER BY c.oid, a.attnum");
  std::vector<FileTable> tables;
  for (int i = 0; i < r.rows(); ++i) {
    std::string table = r.text(i, 0), column = r.text(i, 1);
    if (tables.empty() || tables.back().name != table) tables.push_back({table, {}});
    tables.back().columns.push_back(file_column(table, column, pg::ident(column), r.text(i, 2), r.text(i, 3)));
  }
  return tables;
}

// ---------------------------------------------------------------------------------------------
// SQLite, the few calls the writer needs

std::string sqlite_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string sqlite_text(std::string_view text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

class File {
 public:
  explicit File(const std::string& path) : path_(path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) fail("open");
  }
  ~File() { sqlite3_close_v2(db_); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  void exec(const std::string& sql) {
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql.substr(0, 60));
  }
  // The first column of the first row, as text.
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = prepare(sql);
    std::string out;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_text(s, 0)) out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(sql);
    return out;
  }
  sqlite3_stmt* prepare(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK) fail(sql);
    return s;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw SqliteDesktopError("sqlite desktop " + path_ + ": " + what + ": " +
                             (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Rows: COPY text format in, prepared INSERT out

// Undoes COPY's text escaping of one field (PostgreSQL writes \\, \b, \f, \n, \r, \t, \v; octal and \x
// are accepted too).
void unescape(std::string_view field, std::string& out) {
  out.clear();
  for (size_t i = 0; i < field.size(); ++i) {
    char c = field[i];
    if (c != '\\' || i + 1 == field.size()) {
      out += c;
      continue;
    }
    char e = field[++i];
    switch (e) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case 'x': {
        int v = 0, n = 0;
        while (n < 2 && i + 1 < field.size() && std::isxdigit(static_cast<unsigned char>(field[i + 1]))) {
          char h = field[++i];
          v = v * 16 + (h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
          ++n;
        }
        out += static_cast<char>(v);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0';
          for (int n = 1; n < 3 && i + 1 < field.size() && field[i + 1] >= '0' && field[i + 1] <= '7'; ++n) {
            v = v * 8 + (field[++i] - '0');
          }
          out += static_cast<char>(v);
        } else {
          out += e;
        }
    }
  }
}

std::string from_hex(const std::string& hex) {
  std::string out;
  out.reserve(hex.size() / 2);
  auto nibble = [](char h) { return h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10; };
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  return out;
}

std::string column_names(const FileTable& t) {
  std::string out;
  for (const auto& c : t.columns) out += (out.empty() ? "" : ", ") + sqlite_ident(c.name);
  return out;
}

std::string create_sql(const FileTable& t) {
  std::string lines;
  for (const auto& c : t.columns) {
    lines += (lines.empty() ? "\n  " : ",\n  ") + sqlite_ident(c.name) + " " + c.declared;
    if (c.name == "created_at" || c.name == "updated_at") lines += stamp_default(clock_of(t.name, c.name));
  }
  return "CREATE TABLE " + sqlite_ident(t.name) + " (" + lines + "\n)";
}

// Binds one COPY text field ("\\N": NULL) as parameter `at`; `buffer` holds the bytes until the row is stepped.
int bind(sqlite3_stmt* insert, int at, Storage storage, std::string_view field, std::string& buffer) {
  if (field == "\\N") return sqlite3_bind_null(insert, at);
  unescape(field, buffer);
  switch (storage) {
    case Storage::Integer:
      return sqlite3_bind_int64(insert, at, std::strtoll(buffer.c_str(), nullptr, 10));
    case Storage::Real:
      return sqlite3_bind_double(insert, at, std::strtod(buffer.c_str(), nullptr));
    case Storage::Text:
      break;
    case Storage::Blob:
      buffer = from_hex(buffer);
      return sqlite3_bind_blob(insert, at, buffer.data(), static_cast<int>(buffer.size()), SQLITE_STATIC);
  }
  return sqlite3_bind_text(insert, at, buffer.data(), static_cast<int>(buffer.size()), SQLITE_STATIC);
}

int64_t copy_table(pg::Connection& desktop, File& file, const FileTable& t) {
  file.exec(create_sql(t));
  std::string select, marks;
  for (const auto& c : t.columns) {
    select += (select.empty() ? "" : ", ") + c.select;
    marks += marks.empty() ? "?" : ", ?";
  }
  sqlite3_stmt* insert =
      file.prepare("INSERT INTO " + sqlite_ident(t.name) + " (" + column_names(t) + ") VALUES (" + marks + ")");
  struct Finalize {
    sqlite3_stmt* s;
    ~Finalize() { sqlite3_finalize(s); }
  } finalize{insert};

  const size_t n = t.columns.size();
  std::vector<std::string> values(n);
  int64_t rows = 0;
  pg::CopyOut out(desktop, "COPY (SELECT " + select + " FROM " + pg::ident(t.name) + ") TO STDOUT");
  std::string_view line;
  while (out.next(line)) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    size_t start = 0;
    for (size_t k = 0; k < n; ++k) {
      size_t end = k + 1 < n ? line.find('\t', start) : line.size();
      if (end == std::string_view::npos) throw SqliteDesktopError("sqlite desktop: short COPY row in " + t.name);
      std::string_view field = line.substr(start, end - start);
      start = end + 1;
      if (bind(insert, static_cast<int>(k) + 1, t.columns[k].storage, field, values[k]) != SQLITE_OK) {
        file.fail("binding " + t.name + "." + t.columns[k].name);
      }
    }
    if (sqlite3_step(insert) != SQLITE_DONE) file.fail("inserting into " + t.name);
    sqlite3_reset(insert);
    ++rows;
  }
  return rows;
}

void remove_file_set(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path + suffix).c_str());
}

// ---------------------------------------------------------------------------------------------
// Changes

// Seeded choices made in SQL by arithmetic SQLite has (no hash functions there): "(x * A + B) % m" with a
// prime A (coprime with every modulus used) and B below m picks one residue class of the ids.
class Picker {
 public:
  explicit Picker(uint64_t seed) : seed_(mix64(seed ^ 0x53514C495445ull)) {}  // "SQLITE"
  uint64_t draw(int stream) const { return mix64(seed_ ^ mix64(static_cast<uint64_t>(stream))); }
  // A SQL condition true for 1 in `m` values of the integer expression `x`.
  std::string one_in(const std::string& x, int stream, int m) const { return "(" + order(x, stream, m) + ") = 0"; }
  // A SQL sort key that orders the values of `x` pseudo-randomly.
  std::string order(const std::string& x, int stream, int m = 1000003) const {
    static const uint64_t kPrimes[] = {7919, 7927, 104723, 104729, 1299689, 1299709, 15485857, 15485863};
    uint64_t d = draw(stream);
    return "((" + x + ") * " + std::to_string(kPrimes[d % 8]) + " + " + std::to_string((d >> 8) % m) + ") % " +
           std::to_string(m);
  }
  template <size_t N>
  const char* pick(const char* const (&items)[N], int stream, int k) const {
    return items[draw(stream * 1000 + k) % N];
  }

 private:
  uint64_t seed_;
};

const char* const kFirstNames[] = {"Aarav", "Zoë", "Łukasz", "Jürgen", "Søren", "José", "Chloé", "Siân", "Ólafur"};
const char* const kLastNames[] = {"Müller", "Nguyễn", "O'Brien", "Öztürk", "García", "Łęcki", "田中", "Nørgaard"};
const char* const kCities[] = {"Mumbai", "Łódź", "Zürich", "São Paulo", "München", "Kraków", "Malmö", "東京"};
const char* const kJobs[] = {"GST return filing",      "Jahresabschluss für Müller & Söhne",
                             "Bilans – oddział Łódź",  "決算書レビュー",
                             "Stock audit \"urgent\"", "Partner's review"};

// taskchecklist has no key (tc_id is mostly NULL): its rows are chosen by what they are about.
const char* kChecklistId = "coalesce(job_id, 0) * 1000 + coalesce(task_id, 0)";
const char* kNowUnix = "CAST(strftime('%s', 'now') AS INTEGER)";

std::vector<std::string> victim_client(const Picker& p) {
  const std::string victim = "(SELECT client_id FROM temp.stagesync_demo_victim)";
  return {
      "CREATE TEMP TABLE stagesync_demo_victim AS SELECT c.client_id FROM climaster AS c\n"
      "WHERE c.client_id > 11 AND c.client_id IN (SELECT client_id FROM jobshead)\n"
      "  AND c.client_id NOT IN (SELECT client_id FROM jobshead WHERE job_id <= 5 AND client_id IS NOT NULL)\n"
      "ORDER BY " +
          p.order("c.client_id", 1) + ", c.client_id LIMIT 1",
      "DELETE FROM jobtasks WHERE job_id IN (SELECT job_id FROM jobshead WHERE client_id IN " + victim + ")",
      "DELETE FROM jobshead WHERE client_id IN " + victim,
      "DELETE FROM climaster WHERE client_id IN " + victim,
      "DROP TABLE temp.stagesync_demo_victim",
  };
}

std::vector<std::string> updates(const Picker& p) {
  return {
      "DELETE FROM jobtasks WHERE jt_id IS NOT NULL AND " + p.one_in("jt_id", 2, 400),
      "UPDATE jobshead SET job_status = 'Completed', work_desc = coalesce(work_desc, '') || ' – reviewed',\n"
      "  updated_at = CURRENT_TIMESTAMP\nWHERE " +
          p.one_in("job_id", 3, 100),
      "UPDATE jobtasks SET task_status = 'Completed', minutes = coalesce(minutes, 0) + 30,\n"
      "  completed_date = coalesce(completed_date, date(coalesce(task_date, '2024-12-01'), '+7 days')),\n"
      "  updated_at = " +
          std::string(kNowUnix) + "\nWHERE " + p.one_in("jt_id", 4, 100),
      "UPDATE climaster SET client_name = " + sqlite_text("Zoë Łódź-Müller & Söhne (日本語メモ)") +
          ", updated_at = CURRENT_TIMESTAMP WHERE client_id = 7",
      "UPDATE taskchecklist SET checkliststatus = 'Y', checkdate = '2025-01-10'\n"
      "WHERE checkliststatus = 'N' AND (" +
          p.one_in(kChecklistId, 5, 100) +
          "\n"
          "  OR rowid = (SELECT rowid FROM taskchecklist WHERE checkliststatus = 'N' ORDER BY " +
          p.order(kChecklistId, 8) + " LIMIT 1))",
      "UPDATE mbreminder SET remstatus = 'Done', remnotes = " + sqlite_text("Erledigt – Zoë") +
          ", updated_at = julianday('now') WHERE rem_id = 3",
  };
}

// Keys that change: the target sees the old key vanish and the new one appear.
std::vector<std::string> key_changes(const Picker& p) {
  return {
      "UPDATE mbremdetail SET remdetid = (SELECT max(remdetid) FROM mbremdetail) + 1000, updated_at = "
      "CURRENT_TIMESTAMP\n"
      "WHERE remdetid = (SELECT d.remdetid FROM mbremdetail AS d WHERE d.rem_id IN (SELECT rem_id FROM mbreminder)\n"
      "                  ORDER BY " +
          p.order("d.remdetid", 6) + ", d.remdetid LIMIT 1)",
      "WITH pick AS MATERIALIZED (SELECT t.jt_id, t.job_id FROM jobtasks AS t\n"
      "    WHERE t.task_id IS NOT NULL AND t.job_id IN (SELECT job_id FROM jobshead)\n"
      "    ORDER BY " +
          p.order("t.jt_id", 7) +
          ", t.jt_id LIMIT 1),\n"
          "  used AS MATERIALIZED (SELECT x.task_id FROM jobtasks AS x\n"
          "    WHERE x.job_id = (SELECT job_id FROM pick) AND x.task_id IS NOT NULL)\n"
          "UPDATE jobtasks SET updated_at = " +
          std::string(kNowUnix) +
          ",\n"
          "  task_id = (SELECT min(m.task_id) FROM taskmaster AS m WHERE m.task_id NOT IN (SELECT task_id FROM used))\n"
          "WHERE jt_id = (SELECT jt_id FROM pick)",
  };
}

// New ids start above every id in use, so that no orphan row gains a parent by accident.
std::vector<std::string> inserts(const Picker& p) {
  std::string clients, jobs;
  for (int k = 1; k <= 5; ++k) {
    clients += std::string(k > 1 ? ", " : "") + "(" + std::to_string(k) + ", " +
               sqlite_text(std::string(p.pick(kFirstNames, 10, k)) + " " + p.pick(kLastNames, 11, k) + " (new)") +
               ", " + sqlite_text(p.pick(kCities, 12, k)) + ")";
  }
  for (int g = 1; g <= 20; ++g) {
    jobs += std::string(g > 1 ? ", " : "") + "(" + std::to_string(g) + ", " + sqlite_text(p.pick(kJobs, 13, g)) + ")";
  }
  return {
      "WITH top(id) AS (SELECT max((SELECT max(client_id) FROM climaster), (SELECT max(client_id) FROM jobshead))),\n"
      "  fresh(k, name, city) AS (VALUES " +
          clients +
          ")\n"
          "INSERT INTO climaster (client_id, org_id, loc_id, con_id, client_name, email, phone, city)\n"
          "SELECT top.id + k, 1, 1 + k % 2, CASE WHEN k % 2 = 0 THEN 0 ELSE k END, name,\n"
          "  'new' || (top.id + k) || '@example.com', NULL, city FROM top, fresh",
      "WITH top(id) AS (SELECT max((SELECT max(job_id) FROM jobshead), (SELECT max(job_id) FROM jobtasks))),\n"
      "  cli(id) AS (SELECT max(client_id) FROM climaster),\n"
      "  fresh(g, descr) AS (VALUES " +
          jobs +
          ")\n"
          "INSERT INTO jobshead (job_id, sporg_id, job_uid, year_id, client_id, jobdate, targetdate, work_desc, "
          "job_status, jctincharge)\n"
          "SELECT top.id + g, 1 + g % 3, 'J/2025/NEW-' || substr('00' || g, -3), 2025,\n"
          "  CASE WHEN g <= 5 THEN cli.id - 5 + g ELSE 8 + g % 3 END, date('2025-01-06', '+' || g || ' days'), "
          "'2025-03-31',\n"
          "  descr || ' 2025-26', 'Open', 1 + g % 3 FROM top, cli, fresh",
      "WITH top(id) AS (SELECT max(jt_id) FROM jobtasks), two(t) AS (VALUES (1), (2))\n"
      "INSERT INTO jobtasks (jt_id, job_id, task_id, staff_id, task_status, task_date, task_notes)\n"
      "SELECT top.id + row_number() OVER (ORDER BY j.job_id, two.t), j.job_id, two.t, 1 + two.t, 'Not Started', "
      "j.jobdate,\n"
      "  CASE WHEN two.t = 1 THEN " +
          sqlite_text("Neu: Unterlagen anfordern – Zoë") +
          " END\n"
          "FROM jobshead AS j, two, top\n"
          "WHERE j.job_uid LIKE 'J/2025/NEW-%' AND j.job_id > (SELECT max(job_id) FROM jobtasks)",
      "INSERT INTO taskchecklist (tc_id, job_id, task_id, checklistdesc, checkliststatus) VALUES\n"
      "  (NULL, 2, 1, " +
          sqlite_text("Podpis klienta – Zoë") +
          ", 'N'),\n"
          "  (NULL, 2, 1, " +
          sqlite_text("Podpis klienta – Zoë") +
          ", 'N'),\n"
          "  (NULL, 3, 2, " +
          sqlite_text("確認書受領") + ", NULL)",
      "INSERT INTO mbreminder (rem_id, staff_id, client_id, job_id, remdate, remtitle, remnotes, remstatus)\n"
      "SELECT max(rem_id) + 1, 1, 7, NULL, '2025-02-01', " +
          sqlite_text("Rückruf – Zoë") +
          ", NULL, 'Pending' "
          "FROM mbreminder",
      "WITH d(id) AS (SELECT max(remdetid) FROM mbremdetail), r(id) AS (SELECT max(rem_id) FROM mbreminder),\n"
      "  k(k) AS (VALUES (1), (2))\n"
      "INSERT INTO mbremdetail (remdetid, rem_id, staff_id, remdetdate, remdetnotes, remdetstatus)\n"
      "SELECT d.id + k.k, r.id, 1, '2025-02-01', " +
          sqlite_text("Notiz ") + " || k.k || " + sqlite_text(": O'Brien\tzurückrufen\nzweite Zeile") +
          ", 'Open' FROM d, r, k",
  };
}

}  // namespace

std::map<std::string, int64_t> write_sqlite_desktop(pg::Connection& desktop, const std::string& path,
                                                    const std::string& journal) {
  if (journal != "wal" && journal != "delete") {
    throw SqliteDesktopError("sqlite desktop: journal mode must be \"wal\" or \"delete\", not \"" + journal + "\"");
  }
  // Created exclusively: an existing file (a user's real desktop database, perhaps) is never opened.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw SqliteDesktopError("sqlite desktop " + path + ": " +
                             (errno == EEXIST ? std::string("the file exists; refusing to overwrite it")
                                              : std::string(std::strerror(errno))));
  }
  ::close(fd);  // an empty file is an empty SQLite database

  std::map<std::string, int64_t> written;
  bool reading = false;
  try {
    File file(path);
    if (file.text("PRAGMA journal_mode = " + journal) != journal) file.fail("journal mode " + journal + " refused");
    file.exec("PRAGMA synchronous = OFF");  // a fresh file: nothing to lose until it is complete
    desktop.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    reading = true;
    // ISO dates, shortest exact float text, UTC for timestamptz, and every scan from the table's start (so the
    // same data gives the same rowids).
    desktop.exec(
        "SELECT set_config('DateStyle', 'ISO, YMD', true), set_config('extra_float_digits', '1', true), "
        "set_config('TimeZone', 'UTC', true), set_config('synchronize_seqscans', 'off', true)");
    std::vector<FileTable> tables = read_tables(desktop);
    file.exec("BEGIN");
    for (const FileTable& t : tables) written[t.name] = copy_table(desktop, file, t);
    file.exec("COMMIT");
    reading = false;
    desktop.exec("COMMIT");
  } catch (...) {
    if (reading) {
      try {
        desktop.exec("ROLLBACK");
      } catch (const std::exception&) {
        // best-effort clean-up after the failure being reported; a broken connection says so itself later
      }
    }
    remove_file_set(path);
    throw;
  }
  return written;
}

std::vector<std::string> sqlite_desktop_changes(uint64_t seed) {
  const Picker p(seed);
  std::vector<std::string> out = victim_client(p);
  for (auto* part : {&updates, &key_changes, &inserts}) {
    std::vector<std::string> more = (*part)(p);
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

}  // namespace stagesync::demo
