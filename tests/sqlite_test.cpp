// The SQLite reading core (src/sqlite/), on real SQLite files in a temporary folder: every value conversion and
// its failure (and that PostgreSQL accepts what the converter writes and reads it as meant), the errors a file
// can cause (missing, not a database, damaged, locked), the catalog, and the writer test: an application
// process committing to the file all the time, in WAL mode and in rollback-journal mode, while snapshots are
// taken and every row is read; its commits never wait a second and every snapshot is consistent.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include "pg/copy_stream.h"
#include "sqlite/catalog.h"
#include "sqlite/copy_field.h"
#include "sqlite/database.h"
#include "sqlite/snapshot.h"
#include "sqlite/statement.h"
#include "sqlite/table_facts.h"
#include "sqlite/value_converter.h"
#include "support/servers.h"

namespace stagesync::sqlite {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A temporary folder, removed with everything in it.
class Folder {
 public:
  Folder() {
    std::string pattern = (fs::temp_directory_path() / "stagesync-sqlite-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~Folder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }
  const std::string& path() const { return path_; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

// The application's side: a read-write connection, as a desktop program has one.
class Application {
 public:
  explicit Application(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK)
      throw std::runtime_error("cannot open " + path);
    sqlite3_busy_timeout(db_, 10000);
  }
  ~Application() { sqlite3_close_v2(db_); }
  Application(const Application&) = delete;
  Application& operator=(const Application&) = delete;
  // true when it ran; the error is kept in error().
  bool run(const std::string& sql) {
    char* msg = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
    error_ = msg ? msg : "";
    sqlite3_free(msg);
    return rc == SQLITE_OK;
  }
  void must(const std::string& sql) {
    if (!run(sql)) throw std::runtime_error(sql + ": " + error_);
  }
  sqlite3* handle() const { return db_; }
  const std::string& error() const { return error_; }

 private:
  sqlite3* db_ = nullptr;
  std::string error_;
};

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---------------------------------------------------------------------------------------------------------
// Conversions: each value is produced by a SELECT on a real file, converted for a target column.

struct Converted {
  bool ok = false;
  std::string field;  // the COPY field (escaped) when ok
  std::string why;    // the reason when not
};

class Conversions : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    folder_ = new Folder();
    Application app(*folder_ / "values.db");
    app.must("CREATE TABLE t (x)");
    app.must("INSERT INTO t VALUES (1)");
    db_ = new Database(*folder_ / "values.db");
  }
  static void TearDownTestSuite() {
    delete db_;
    delete folder_;
  }

  static catalog::Column column(const std::string& type, int max_length = -1) {
    catalog::Column c;
    c.name = "c";
    c.base_type = "pg_catalog." + type;
    c.max_length = max_length;
    return c;
  }
  // `expression` is SQLite SQL: "42", "'abc'", "x'00ff'", "CAST(x'41ff' AS TEXT)", "julianday('2024-03-05')".
  static Converted convert(const std::string& type, const std::string& expression, int max_length = -1,
                           const std::string& timezone = "") {
    Statement s(*db_, "SELECT " + expression + " FROM t");
    EXPECT_TRUE(s.step()) << expression;
    ValueConverter conv(column(type, max_length), timezone);
    Converted out;
    out.ok = conv.append(s.value(0), out.field, out.why);
    if (!out.ok) out.field.clear();
    return out;
  }
  static std::string describe(const std::string& expression) {
    Statement s(*db_, "SELECT " + expression + " FROM t");
    EXPECT_TRUE(s.step());
    return describe_value(s.value(0));
  }

  static Folder* folder_;
  static Database* db_;
};
Folder* Conversions::folder_ = nullptr;
Database* Conversions::db_ = nullptr;

// The field, or the reason prefixed with "!" (so one EXPECT_EQ shows both).
std::string outcome(const Converted& c) { return c.ok ? c.field : "!" + c.why; }

TEST_F(Conversions, Integers) {
  EXPECT_EQ(outcome(convert("int4", "42")), "42");
  EXPECT_EQ(outcome(convert("int4", "-7")), "-7");
  EXPECT_EQ(outcome(convert("int2", "32767")), "32767");
  EXPECT_EQ(outcome(convert("int2", "32768")), "!integer 32768 is out of range for smallint");
  EXPECT_EQ(outcome(convert("int2", "-32769")), "!integer -32769 is out of range for smallint");
  EXPECT_EQ(outcome(convert("int4", "2147483648")), "!integer 2147483648 is out of range for integer");
  EXPECT_EQ(outcome(convert("int8", "9223372036854775807")), "9223372036854775807");
  // REAL with an integral value; anything else is refused, never rounded.
  EXPECT_EQ(outcome(convert("int4", "3.0")), "3");
  EXPECT_EQ(outcome(convert("int8", "-1e15")), "-1000000000000000");
  EXPECT_EQ(outcome(convert("int4", "3.5")), "!real 3.5 is not an integer");
  EXPECT_EQ(outcome(convert("int8", "1e19")), "!real 1e+19 is out of range for bigint");
  EXPECT_EQ(outcome(convert("int2", "40000.0")), "!real 40000 is out of range for smallint");
  EXPECT_EQ(outcome(convert("int8", "9e999")), "!real Infinity is not an integer");
  // TEXT holding an integer: digits with an optional sign, nothing around them.
  EXPECT_EQ(outcome(convert("int4", "'123'")), "123");
  EXPECT_EQ(outcome(convert("int4", "'-123'")), "-123");
  EXPECT_EQ(outcome(convert("int4", "'+5'")), "5");
  EXPECT_EQ(outcome(convert("int4", "' 5'")), "!text ' 5' is not an integer");
  EXPECT_EQ(outcome(convert("int4", "'5 '")), "!text '5 ' is not an integer");
  EXPECT_EQ(outcome(convert("int4", "'12.0'")), "!text '12.0' is not an integer");
  EXPECT_EQ(outcome(convert("int4", "'+-5'")), "!text '+-5' is not an integer");
  EXPECT_EQ(outcome(convert("int4", "''")), "!text '' is not an integer");
  EXPECT_EQ(outcome(convert("int4", "'abc'")), "!text 'abc' is not an integer");
  EXPECT_EQ(outcome(convert("int2", "'70000'")), "!text '70000' is out of range for smallint");
  EXPECT_EQ(outcome(convert("int8", "'99999999999999999999'")),
            "!text '99999999999999999999' is out of range for bigint");
  EXPECT_EQ(outcome(convert("int4", "x'01'")), "!blob of 1 byte is not an integer");
  EXPECT_EQ(outcome(convert("int4", "NULL")), "\\N");
}

TEST_F(Conversions, Floats) {
  EXPECT_EQ(outcome(convert("float8", "0.1")), "0.1");
  EXPECT_EQ(outcome(convert("float8", "1.0")), "1");
  EXPECT_EQ(outcome(convert("float8", "0.1 + 0.2")), "0.30000000000000004");  // shortest text of that double
  EXPECT_EQ(outcome(convert("float8", "1e300")), "1e+300");
  EXPECT_EQ(outcome(convert("float8", "7")), "7");
  EXPECT_EQ(outcome(convert("float8", "9e999")), "Infinity");
  EXPECT_EQ(outcome(convert("float8", "-9e999")), "-Infinity");
  EXPECT_EQ(outcome(convert("float8", "'1.5e3'")), "1500");
  EXPECT_EQ(outcome(convert("float8", "'-.25'")), "-0.25");
  EXPECT_EQ(outcome(convert("float8", "'abc'")), "!text 'abc' is not a number");
  EXPECT_EQ(outcome(convert("float8", "'1,5'")), "!text '1,5' is not a number");
  EXPECT_EQ(outcome(convert("float8", "'-Infinity'")), "-Infinity");
  EXPECT_EQ(outcome(convert("float8", "'nan(1)'")), "!text 'nan(1)' is not a number");
  EXPECT_EQ(outcome(convert("float8", "'1e999'")), "!text '1e999' is out of range for double precision");
  EXPECT_EQ(outcome(convert("float8", "x'01'")), "!blob of 1 byte is not a number");
  EXPECT_EQ(outcome(convert("float4", "0.5")), "0.5");
  EXPECT_EQ(outcome(convert("float4", "1e300")), "!real 1e+300 is out of range for real");
  EXPECT_EQ(outcome(convert("float4", "'1e39'")), "!text '1e39' is out of range for real");
  EXPECT_EQ(outcome(convert("float4", "1e-50")), "!real 1e-50 is out of range for real");
}

TEST_F(Conversions, Numerics) {
  EXPECT_EQ(outcome(convert("numeric", "42")), "42");
  EXPECT_EQ(outcome(convert("numeric", "-9223372036854775808")), "-9223372036854775808");
  EXPECT_EQ(outcome(convert("numeric", "0.1")), "0.1");
  EXPECT_EQ(outcome(convert("numeric", "19.99")), "19.99");
  // Text keeps digits a double would lose.
  EXPECT_EQ(outcome(convert("numeric", "'12345678901234567890.123456789'")), "12345678901234567890.123456789");
  EXPECT_EQ(outcome(convert("numeric", "'1e400'")), "1e400");
  EXPECT_EQ(outcome(convert("numeric", "'1,5'")), "!text '1,5' is not a number");
  EXPECT_EQ(outcome(convert("numeric", "' 1'")), "!text ' 1' is not a number");
  EXPECT_EQ(outcome(convert("numeric", "''")), "!text '' is not a number");
  EXPECT_EQ(outcome(convert("numeric", "'NaN'")), "NaN");
  EXPECT_EQ(outcome(convert("numeric", "'nan(1)'")), "!text 'nan(1)' is not a number");
  EXPECT_EQ(outcome(convert("numeric", "x'3132'")), "!blob of 2 bytes is not a number");
}

TEST_F(Conversions, Texts) {
  EXPECT_EQ(outcome(convert("text", "'héllo wörld ✓ 😀'")), "héllo wörld ✓ 😀");
  // COPY escapes: tab, newline, carriage return, backslash.
  EXPECT_EQ(outcome(convert("text", "'a' || char(9) || 'b' || char(10) || 'c' || char(13) || 'd\\e'")),
            "a\\tb\\nc\\rd\\\\e");
  EXPECT_EQ(outcome(convert("text", "42")), "42");
  EXPECT_EQ(outcome(convert("text", "1.5")), "1.5");
  EXPECT_EQ(outcome(convert("text", "x'68656c6c6f'")), "hello");
  // Non-UTF-8 is refused and named, never mangled.
  EXPECT_EQ(outcome(convert("text", "CAST(x'41ff42' AS TEXT)")), "!text 'A\\xFFB' is not valid UTF-8 (byte 2 of 3)");
  EXPECT_EQ(outcome(convert("text", "CAST(x'41c3' AS TEXT)")), "!text 'A\\xC3' is not valid UTF-8 (byte 2 of 2)");
  EXPECT_EQ(outcome(convert("text", "CAST(x'eda080' AS TEXT)")),  // a surrogate
            "!text '\\xED\\xA0\\x80' is not valid UTF-8 (byte 1 of 3)");
  EXPECT_EQ(outcome(convert("text", "CAST(x'c0af' AS TEXT)")),  // an overlong '/'
            "!text '\\xC0\\xAF' is not valid UTF-8 (byte 1 of 2)");
  EXPECT_EQ(outcome(convert("text", "CAST(x'410042' AS TEXT)")),
            "!text 'A\\x00B' contains a NUL character (byte 2), which PostgreSQL text cannot hold");
  EXPECT_EQ(outcome(convert("text", "x'ff'")), "!blob of 1 byte is not valid UTF-8 (byte 1 of 1)");
  // varchar(n) / char(n): characters, not bytes; excess spaces are PostgreSQL's to drop, anything else refused.
  EXPECT_EQ(outcome(convert("varchar", "'äöü'", 3)), "äöü");
  EXPECT_EQ(outcome(convert("varchar", "'abc  '", 3)), "abc  ");
  EXPECT_EQ(outcome(convert("varchar", "'abcd'", 3)), "!text 'abcd' has 4 characters, too long for text");
  EXPECT_EQ(outcome(convert("bpchar", "'äöüx'", 3)), "!text 'äöüx' has 4 characters, too long for text");
  EXPECT_EQ(outcome(convert("varchar", "12345", 4)), "!integer 12345 has 5 characters, too long for text");
}

TEST_F(Conversions, Booleans) {
  EXPECT_EQ(outcome(convert("bool", "1")), "t");
  EXPECT_EQ(outcome(convert("bool", "0")), "f");
  EXPECT_EQ(outcome(convert("bool", "1.0")), "t");
  for (const char* yes : {"'1'", "'true'", "'TRUE'", "'t'", "'Yes'"}) EXPECT_EQ(outcome(convert("bool", yes)), "t");
  for (const char* no : {"'0'", "'false'", "'F'", "'no'", "'NO'"}) EXPECT_EQ(outcome(convert("bool", no)), "f");
  EXPECT_EQ(outcome(convert("bool", "2")), "!integer 2 is not a boolean (0/1, true/false, t/f, yes/no)");
  EXPECT_EQ(outcome(convert("bool", "0.5")), "!real 0.5 is not a boolean (0/1, true/false, t/f, yes/no)");
  EXPECT_EQ(outcome(convert("bool", "'maybe'")), "!text 'maybe' is not a boolean (0/1, true/false, t/f, yes/no)");
  EXPECT_EQ(outcome(convert("bool", "' true'")), "!text ' true' is not a boolean (0/1, true/false, t/f, yes/no)");
  EXPECT_EQ(outcome(convert("bool", "x'01'")), "!blob of 1 byte is not a boolean (0/1, true/false, t/f, yes/no)");
}

TEST_F(Conversions, Dates) {
  EXPECT_EQ(outcome(convert("date", "'2024-02-29'")), "2024-02-29");
  EXPECT_EQ(outcome(convert("date", "'2024-03-05 00:00:00'")), "2024-03-05");
  EXPECT_EQ(outcome(convert("date", "julianday('2024-03-05')")), "2024-03-05");
  EXPECT_EQ(outcome(convert("date", "unixepoch('2024-03-05')")), "2024-03-05");
  EXPECT_EQ(outcome(convert("date", "'0001-01-01'")), "0001-01-01");
  EXPECT_EQ(outcome(convert("date", "'2023-02-29'")), "!text '2023-02-29' is not a valid date (2023-02 has no day 29)");
  EXPECT_EQ(outcome(convert("date", "'2024-04-31'")), "!text '2024-04-31' is not a valid date (2024-04 has no day 31)");
  EXPECT_EQ(outcome(convert("date", "'2024-13-01'")), "!text '2024-13-01' is not a valid date (month 13)");
  EXPECT_EQ(outcome(convert("date", "'0000-01-01'")), "!text '0000-01-01' is out of range (years 1 to 9999)");
  EXPECT_EQ(outcome(convert("date", "'05.03.2024'")),
            "!text '05.03.2024' is not in the form YYYY-MM-DD[ HH:MM[:SS[.SSS]]][Z|+HH:MM]");
  EXPECT_EQ(outcome(convert("date", "'2024-3-5'")),
            "!text '2024-3-5' is not in the form YYYY-MM-DD[ HH:MM[:SS[.SSS]]][Z|+HH:MM]");
  // A time of day is refused, not dropped.
  EXPECT_EQ(outcome(convert("date", "'2024-03-05 10:00'")),
            "!text '2024-03-05 10:00' has a time of day; the target column is date");
  EXPECT_EQ(outcome(convert("date", "julianday('2024-03-05 18:00')")),
            "!real 2460375.25 has a time of day; the target column is date");
  EXPECT_EQ(outcome(convert("date", "unixepoch('2024-03-05') + 1")),
            "!integer 1709596801 has a time of day; the target column is date");
  EXPECT_EQ(outcome(convert("date", "x'01'")), "!blob of 1 byte is not a date or time");
}

TEST_F(Conversions, Timestamps) {
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05 10:20'")), "2024-03-05 10:20:00");
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05T10:20:30.125'")), "2024-03-05 10:20:30.125");
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05 10:20:30'")), "2024-03-05 10:20:30");
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05'")), "2024-03-05 00:00:00");
  EXPECT_EQ(outcome(convert("timestamp", "datetime('now')")).size(), 19u);
  // REAL: a Julian day number (to the millisecond, as SQLite keeps it); INTEGER: Unix seconds; both UTC.
  EXPECT_EQ(outcome(convert("timestamp", "julianday('2024-03-05 10:20:30.5')")), "2024-03-05 10:20:30.500");
  EXPECT_EQ(outcome(convert("timestamp", "2440587.5")), "1970-01-01 00:00:00");
  EXPECT_EQ(outcome(convert("timestamp", "1709634030")), "2024-03-05 10:20:30");
  EXPECT_EQ(outcome(convert("timestamp", "-1")), "1969-12-31 23:59:59");
  EXPECT_EQ(outcome(convert("timestamp", "1709634030000")),
            "!integer 1709634030000 is out of range as Unix seconds (years 1 to 9999); milliseconds?");
  EXPECT_EQ(outcome(convert("timestamp", "-1.0")), "!real -1 is out of range as a Julian day number (years 1 to 9999)");
  // An offset is refused for a timestamp without time zone (decided: which wall clock is unknown).
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05 10:20:30Z'")),
            "!text '2024-03-05 10:20:30Z' has a UTC offset, which timestamp without time zone cannot keep (a "
            "timestamptz target can)");
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05 24:00'")), "!text '2024-03-05 24:00' is not a valid time of day");
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05 10:61'")), "!text '2024-03-05 10:61' is not a valid time of day");
  EXPECT_EQ(outcome(convert("timestamp", "'2024-02-30 10:00'")),
            "!text '2024-02-30 10:00' is not a valid date (2024-02 has no day 30)");
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05 10'")),
            "!text '2024-03-05 10' is not in the form YYYY-MM-DD[ HH:MM[:SS[.SSS]]][Z|+HH:MM]");
  EXPECT_EQ(outcome(convert("timestamp", "'2024-03-05 10:20:30.'")),
            "!text '2024-03-05 10:20:30.' is not in the form YYYY-MM-DD[ HH:MM[:SS[.SSS]]][Z|+HH:MM]");
  EXPECT_EQ(outcome(convert("timestamp", "x'01'")), "!blob of 1 byte is not a date or time");
}

TEST_F(Conversions, TimestampsWithTimeZone) {
  EXPECT_EQ(outcome(convert("timestamptz", "'2024-03-05 10:20:30+02:00'")), "2024-03-05 10:20:30+02:00");
  EXPECT_EQ(outcome(convert("timestamptz", "'2024-03-05T10:20:30.5-05:30'")), "2024-03-05 10:20:30.5-05:30");
  EXPECT_EQ(outcome(convert("timestamptz", "'2024-03-05 10:20:30Z'")), "2024-03-05 10:20:30+00:00");
  EXPECT_EQ(outcome(convert("timestamptz", "'2024-03-05 10:20:30 Z'")), "2024-03-05 10:20:30+00:00");
  // Zone-less: the configured zone, appended for PostgreSQL to interpret; UTC when none is configured.
  EXPECT_EQ(outcome(convert("timestamptz", "'2024-03-05 10:20:30'", -1, "Europe/Berlin")),
            "2024-03-05 10:20:30 Europe/Berlin");
  EXPECT_EQ(outcome(convert("timestamptz", "'2024-03-05 10:20:30'")), "2024-03-05 10:20:30+00:00");
  // Numbers are instants in UTC, whatever the configured zone.
  EXPECT_EQ(outcome(convert("timestamptz", "1709634030", -1, "Europe/Berlin")), "2024-03-05 10:20:30+00:00");
  EXPECT_EQ(outcome(convert("timestamptz", "julianday('2024-03-05 10:20:30')")), "2024-03-05 10:20:30+00:00");
  EXPECT_EQ(outcome(convert("timestamptz", "'2024-03-05 10:20:30+25:00'")),
            "!text '2024-03-05 10:20:30+25:00' has an offset that is not +HH:MM or -HH:MM");
  EXPECT_EQ(outcome(convert("timestamptz", "'2024-03-05 10:20:30 CET'")),
            "!text '2024-03-05 10:20:30 CET' is not in the form YYYY-MM-DD[ HH:MM[:SS[.SSS]]][Z|+HH:MM]");
}

TEST_F(Conversions, Times) {
  EXPECT_EQ(outcome(convert("time", "'10:20'")), "10:20:00");
  EXPECT_EQ(outcome(convert("time", "'10:20:30.5'")), "10:20:30.5");
  EXPECT_EQ(outcome(convert("time", "'23:59:59'")), "23:59:59");
  EXPECT_EQ(outcome(convert("time", "'25:00'")), "!text '25:00' is not a valid time of day");
  EXPECT_EQ(outcome(convert("time", "'10:2'")), "!text '10:2' is not in the form HH:MM[:SS[.SSS]]");
  EXPECT_EQ(outcome(convert("time", "'2024-03-05 10:20'")),
            "!text '2024-03-05 10:20' is not in the form HH:MM[:SS[.SSS]]");
  EXPECT_EQ(outcome(convert("time", "'10:20Z'")), "!text '10:20Z' is not in the form HH:MM[:SS[.SSS]]");
  EXPECT_EQ(outcome(convert("time", "42")), "!integer 42 is not a time of day (HH:MM[:SS[.SSS]])");
}

TEST_F(Conversions, BinaryUuidAndPassThrough) {
  // bytea: \x hex, its backslash escaped for COPY.
  EXPECT_EQ(outcome(convert("bytea", "x'00ff10'")), "\\\\x00ff10");
  EXPECT_EQ(outcome(convert("bytea", "'ab'")), "\\\\x6162");
  EXPECT_EQ(outcome(convert("bytea", "x''")), "\\\\x");
  EXPECT_EQ(outcome(convert("bytea", "5")), "!integer 5 is not binary data (a blob or a text)");
  // uuid: text as written (PostgreSQL validates), a 16-byte blob as the uuid it holds.
  EXPECT_EQ(outcome(convert("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'")), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(outcome(convert("uuid", "x'a0eebc999c0b4ef8bb6d6bb9bd380a11'")), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(outcome(convert("uuid", "x'a0eebc999c0b4ef8bb6d6bb9bd380a'")),
            "!blob of 15 bytes is not a uuid (a text, or a blob of 16 bytes)");
  EXPECT_EQ(outcome(convert("uuid", "7")), "!integer 7 is not a uuid (a text, or a blob of 16 bytes)");
  // Any other type: text passed through (valid UTF-8), numbers as their text, blobs refused.
  EXPECT_EQ(outcome(convert("jsonb", "'{\"a\": [1, \"x\\ty\"]}'")), "{\"a\": [1, \"x\\\\ty\"]}");
  EXPECT_EQ(outcome(convert("json", "5")), "5");
  EXPECT_EQ(outcome(convert("interval", "'1 day'")), "1 day");
  EXPECT_EQ(outcome(convert("json", "CAST(x'ff' AS TEXT)")), "!text '\\xFF' is not valid UTF-8 (byte 1 of 1)");
  EXPECT_EQ(outcome(convert("jsonb", "x'7b7d'")), "!blob of 2 bytes cannot be converted to pg_catalog.jsonb");
}

TEST_F(Conversions, MessagesNameTheTargetColumnsType) {
  catalog::Column c = column("varchar", 3);
  c.type = "character varying(3)";
  Statement s(*db_, "SELECT 'abcd' FROM t");
  ASSERT_TRUE(s.step());
  std::string line, why;
  EXPECT_FALSE(ValueConverter(c).append(s.value(0), line, why));
  EXPECT_EQ(why, "text 'abcd' has 4 characters, too long for character varying(3)");
}

TEST_F(Conversions, DescribeValue) {
  EXPECT_EQ(describe("'abc'"), "text 'abc'");
  EXPECT_EQ(describe("42"), "integer 42");
  EXPECT_EQ(describe("1.5"), "real 1.5");
  EXPECT_EQ(describe("x'010203'"), "blob of 3 bytes");
  EXPECT_EQ(describe("zeroblob(1024)"), "blob of 1024 bytes");
  EXPECT_EQ(describe("NULL"), "null");
  EXPECT_EQ(describe("'tab' || char(9) || 'é\\'"), "text 'tab\\x09é\\\\'");
  EXPECT_EQ(describe("CAST(x'41ff42' AS TEXT)"), "text 'A\\xFFB'");
  // Shortened to about 60 characters, never inside a character.
  std::string d = describe("printf('%.200c', 'x')");
  EXPECT_EQ(d, "text '" + std::string(60, 'x') + "...'");
  d = describe("printf('%.100c', 'x') || 'é'");
  EXPECT_EQ(d, "text '" + std::string(60, 'x') + "...'");
  d = describe("'x' || replace(printf('%.100c', 'x'), 'x', 'ü')");
  EXPECT_EQ(d.substr(d.size() - 4), "...'");
  EXPECT_EQ(utf8_invalid_at(d), std::string::npos) << d;
  EXPECT_LE(utf8_length(d), 70u);
}

// What the converter writes, as PostgreSQL reads it: a COPY into a table of the target type, read back as text.
TEST_F(Conversions, PostgreSQLReadsWhatTheConverterWrites) {
  testing::TempDatabase target(testing::Servers::target(), "sqlite_conv");
  pg::Connection conn = target.connect();
  conn.exec("SET TimeZone = 'UTC'");
  struct Case {
    const char* type;  // PostgreSQL type
    const char* base;  // its base_type name
    const char* expression;
    const char* timezone;
    const char* expected;  // the value as PostgreSQL shows it (::text, TimeZone UTC)
  };
  const Case cases[] = {
      {"smallint", "int2", "-32768", "", "-32768"},
      {"bigint", "int8", "'9223372036854775807'", "", "9223372036854775807"},
      {"integer", "int4", "3.0", "", "3"},
      {"double precision", "float8", "0.1 + 0.2", "", "0.30000000000000004"},
      {"double precision", "float8", "9e999", "", "Infinity"},
      {"real", "float4", "'0.1'", "", "0.1"},
      {"numeric", "numeric", "'12345678901234567890.123456789'", "", "12345678901234567890.123456789"},
      {"numeric", "numeric", "19.99", "", "19.99"},
      {"text", "text", "'a' || char(9) || 'b' || char(10) || 'c' || char(13) || 'd\\e ✓'", "", "a\tb\nc\rd\\e ✓"},
      {"character varying(3)", "varchar", "'abc  '", "", "abc"},
      {"character(3)", "bpchar", "'äö'", "", "äö"},  // ::text drops char(n)'s padding
      {"boolean", "bool", "'Yes'", "", "true"},
      {"date", "date", "julianday('2024-02-29')", "", "2024-02-29"},
      {"timestamp", "timestamp", "'2024-03-05T10:20:30.125'", "", "2024-03-05 10:20:30.125"},
      {"timestamp", "timestamp", "1709634030", "", "2024-03-05 10:20:30"},
      {"timestamptz", "timestamptz", "'2024-03-05 10:20:30'", "Europe/Berlin", "2024-03-05 09:20:30+00"},
      {"timestamptz", "timestamptz", "'2024-07-05 10:20:30'", "Europe/Berlin", "2024-07-05 08:20:30+00"},
      {"timestamptz", "timestamptz", "'2024-03-05 10:20:30-05:30'", "", "2024-03-05 15:50:30+00"},
      {"timestamptz", "timestamptz", "julianday('2024-03-05 10:20:30')", "", "2024-03-05 10:20:30+00"},
      {"time", "time", "'10:20:30.5'", "", "10:20:30.5"},
      {"bytea", "bytea", "x'00ff5c'", "", "\\x00ff5c"},
      {"uuid", "uuid", "x'a0eebc999c0b4ef8bb6d6bb9bd380a11'", "", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
      {"jsonb", "jsonb", "'{\"b\": 1, \"a\": \"x\\\\y\"}'", "", "{\"a\": \"x\\\\y\", \"b\": 1}"},
  };
  int n = 0;
  for (const Case& c : cases) {
    std::string table = "v" + std::to_string(++n);
    conn.exec("CREATE TABLE " + table + " (v " + c.type + ")");
    Statement s(*db_, std::string("SELECT ") + c.expression + " FROM t");
    ASSERT_TRUE(s.step());
    std::string line, why;
    ASSERT_TRUE(ValueConverter(column(c.base), c.timezone).append(s.value(0), line, why)) << c.expression << why;
    line += '\n';
    {
      pg::CopyIn in(conn, "COPY " + table + " FROM STDIN");
      in.write(line);
      in.finish();
    }
    pg::Result r = conn.exec("SELECT v::text FROM " + table);
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.text(0, 0), c.expected) << c.type << " from " << c.expression << " (COPY field " << line << ")";
  }
  EXPECT_GE(n, 20);
}

// ---------------------------------------------------------------------------------------------------------
// Files that cannot be read.

class Files : public ::testing::Test {
 protected:
  Folder dir;
};

template <typename F>
Error::Kind kind_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "no sqlite::Error";
  return Error::Kind::Other;
}

TEST_F(Files, AMissingFileIsMissingAndIsNotCreated) {
  std::string path = dir / "nope.db";
  std::string message;
  EXPECT_EQ(kind_of([&] { Database db(path); }, &message), Error::Kind::Missing);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(dir.names().empty());
  fs::create_directory(dir / "folder.db");
  EXPECT_EQ(kind_of([&] { Database db(dir / "folder.db"); }, &message), Error::Kind::NotDatabase);
  EXPECT_NE(message.find(dir / "folder.db"), std::string::npos) << message;
}

TEST_F(Files, ANonSqliteFileIsNotADatabase) {
  std::string path = dir / "notes.db";
  std::ofstream(path) << std::string(2000, 'x') << "\nthis is a text file, not a database\n";
  std::string message;
  EXPECT_EQ(kind_of([&] { Database db(path); }, &message), Error::Kind::NotDatabase);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("not a SQLite database"), std::string::npos) << message;

  std::string empty = dir / "empty.db";
  std::ofstream(empty).close();
  EXPECT_EQ(kind_of([&] { Database db(empty); }, &message), Error::Kind::NotDatabase);
  EXPECT_NE(message.find(empty), std::string::npos) << message;
  EXPECT_EQ(fs::file_size(empty), 0u);
}

TEST_F(Files, ATruncatedFileIsCorrupt) {
  std::string path = dir / "cut.db";
  {
    Application app(path);
    app.must("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)");
    app.must(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
        "INSERT INTO big SELECT i, printf('row %08d of the table', i) FROM n");
  }
  auto size = fs::file_size(path);
  ASSERT_GT(size, 200000u);
  fs::resize_file(path, size / 2);  // the second half of the table's pages is gone
  std::string message;
  Error::Kind kind = kind_of(
      [&] {
        Database db(path);
        Statement rows(db, "SELECT payload FROM big");
        while (rows.step()) {
        }
      },
      &message);
  EXPECT_EQ(kind, Error::Kind::Corrupt);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("damaged"), std::string::npos) << message;
}

TEST_F(Files, AMissingTableIsAbsentFromTheCatalogAndAnErrorNamingTheFileInSql) {
  std::string path = dir / "app.db";
  {
    Application app(path);
    app.must("CREATE TABLE orders (id INTEGER PRIMARY KEY)");
  }
  Database db(path);
  catalog::Tables t = read_tables(db, {"orders", "customers"});
  EXPECT_TRUE(t.at("orders").has_value());
  EXPECT_FALSE(t.at("customers").has_value());
  std::string message;
  EXPECT_EQ(kind_of([&] { Statement s(db, "SELECT * FROM customers"); }, &message), Error::Kind::Other);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("no such table: customers"), std::string::npos) << message;
}

TEST_F(Files, TheCatalogAsStagesyncSeesIt) {
  std::string path = dir / "app.db";
  {
    Application app(path);
    app.must(
        "CREATE TABLE Orders (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, price DECIMAL(10,2), "
        "weight DOUBLE, data BLOB, misc, created DATETIME, flag BOOLEAN, note TEXT DEFAULT 'x', "
        "total REAL GENERATED ALWAYS AS (price * 2) VIRTUAL)");
    app.must("CREATE VIEW big_orders AS SELECT id, name FROM Orders WHERE price > 100");
  }
  Database db(path);
  EXPECT_FALSE(db.wal());
  catalog::Tables t = read_tables(db, {"orders", "MAIN.ORDERS", "big_orders", "sqlite_master2"});
  ASSERT_TRUE(t.at("orders").has_value());
  const catalog::TableSchema& o = *t.at("orders");
  EXPECT_EQ(o.schema, "main");
  EXPECT_EQ(o.name, "Orders");
  ASSERT_EQ(o.columns.size(), 10u);
  struct Expected {
    const char* name;
    const char* type;
    const char* base;
    bool not_null;
  };
  const Expected expected[] = {
      {"id", "INTEGER", "sqlite:integer", false},
      {"name", "VARCHAR(40)", "sqlite:text", true},
      {"price", "DECIMAL(10,2)", "sqlite:numeric", false},
      {"weight", "DOUBLE", "sqlite:real", false},
      {"data", "BLOB", "sqlite:blob", false},
      {"misc", "", "sqlite:blob", false},
      {"created", "DATETIME", "sqlite:numeric", false},
      {"flag", "BOOLEAN", "sqlite:numeric", false},
      {"note", "TEXT", "sqlite:text", false},
      {"total", "REAL", "sqlite:real", false},
  };
  for (size_t i = 0; i < o.columns.size(); ++i) {
    const catalog::Column& c = o.columns[i];
    EXPECT_EQ(c.name, expected[i].name);
    EXPECT_EQ(c.type, expected[i].type) << c.name;
    EXPECT_EQ(c.base_type, expected[i].base) << c.name;
    EXPECT_EQ(c.not_null, expected[i].not_null) << c.name;
    EXPECT_EQ(c.max_length, -1);
    EXPECT_TRUE(c.builtin_type);
    EXPECT_TRUE(c.comparable);
    EXPECT_EQ(c.category, 'U');
  }
  EXPECT_TRUE(o.columns[8].has_default);
  EXPECT_TRUE(o.columns[9].generated);
  EXPECT_FALSE(o.columns[1].generated);
  ASSERT_TRUE(t.at("MAIN.ORDERS").has_value());
  EXPECT_EQ(t.at("MAIN.ORDERS")->name, "Orders");
  ASSERT_TRUE(t.at("big_orders").has_value());  // views count as tables
  EXPECT_EQ(t.at("big_orders")->columns.size(), 2u);
  EXPECT_FALSE(t.at("sqlite_master2").has_value());
  EXPECT_EQ(affinity_of("CHARACTER(20)"), "sqlite:text");
  EXPECT_EQ(affinity_of("FLOATING POINT"), "sqlite:integer");  // "INT" wins, as in SQLite
  EXPECT_EQ(affinity_of("STRING"), "sqlite:numeric");
}

TEST_F(Files, KeysForeignKeysAndDefaults) {
  std::string path = dir / "app.db";
  {
    Application app(path);
    app.must("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT UNIQUE, code TEXT, region TEXT)");
    app.must("CREATE UNIQUE INDEX customers_code ON customers (region, code)");
    app.must("CREATE UNIQUE INDEX customers_lower ON customers (lower(email))");  // an expression: left out
    app.must("CREATE UNIQUE INDEX customers_partial ON customers (code) WHERE code IS NOT NULL");  // partial: out
    app.must("CREATE INDEX customers_region ON customers (region)");                               // not unique: out
    app.must(
        "CREATE TABLE lines (order_no TEXT, line INTEGER, customer INTEGER REFERENCES customers, "
        "status TEXT NOT NULL DEFAULT 'open', created TEXT DEFAULT CURRENT_TIMESTAMP, "
        "total REAL GENERATED ALWAYS AS (line * 2) STORED, PRIMARY KEY (order_no, line), "
        "FOREIGN KEY (order_no, line) REFERENCES lines (order_no, line)) WITHOUT ROWID");
    app.must("CREATE VIEW v AS SELECT * FROM customers");
  }
  Database db(path);
  EXPECT_EQ(table_names(db), (std::vector<std::string>{"customers", "lines", "v"}));
  catalog::Facts f = read_facts(db, {"customers", "LINES", "v", "nope"});

  const catalog::TableFacts& c = f.at("customers");
  ASSERT_EQ(c.unique.size(), 3u);
  EXPECT_TRUE(c.unique[0].primary);
  EXPECT_EQ(c.unique[0].columns, (std::vector<std::string>{"id"}));
  EXPECT_EQ(c.unique[1].name, "customers_code");
  EXPECT_EQ(c.unique[1].columns, (std::vector<std::string>{"region", "code"}));
  EXPECT_EQ(c.unique[2].columns, (std::vector<std::string>{"email"}));  // the UNIQUE constraint's index
  EXPECT_EQ(c.fills.at("id").identity, 'd');                            // the rowid's alias
  EXPECT_TRUE(c.foreign_keys.empty());

  const catalog::TableFacts& l = f.at("LINES");
  ASSERT_FALSE(l.unique.empty());
  EXPECT_TRUE(l.unique[0].primary);
  EXPECT_EQ(l.unique[0].columns, (std::vector<std::string>{"order_no", "line"}));
  EXPECT_EQ(l.fills.count("line"), 0u);  // INTEGER in a composite key of a WITHOUT ROWID table: not filled
  EXPECT_EQ(l.fills.at("status").default_expr, "'open'");
  std::string value;
  EXPECT_TRUE(l.fills.at("status").constant_text(value));
  EXPECT_EQ(value, "open");
  EXPECT_EQ(l.fills.at("created").default_expr, "CURRENT_TIMESTAMP");
  EXPECT_TRUE(l.fills.at("total").computed);
  ASSERT_EQ(l.foreign_keys.size(), 2u);
  const catalog::ForeignKey* to_customers = nullptr;
  for (const auto& fk : l.foreign_keys)
    if (fk.parent_table == "customers") to_customers = &fk;
  ASSERT_NE(to_customers, nullptr);
  EXPECT_EQ(to_customers->columns, (std::vector<std::string>{"customer"}));
  EXPECT_EQ(to_customers->parent_columns, (std::vector<std::string>{"id"}));  // REFERENCES customers: its key
  EXPECT_EQ(to_customers->parent_schema, "main");
  EXPECT_TRUE(f.at("v").unique.empty());
  EXPECT_TRUE(f.at("nope").unique.empty());
}

// ---------------------------------------------------------------------------------------------------------
// Processes: an application holding a lock, an application writing all the time.

// A forked child running `body`; `body`'s return value is its exit code. The child never returns into gtest.
pid_t fork_child(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = body();
    } catch (...) {
      code = 2;
    }
    _exit(code);
  }
  return pid;
}

// A pipe whose read end the child watches; closing the write end tells it to stop.
struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (pipe(fd) != 0) throw std::runtime_error("pipe failed");
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (fd[0] >= 0) close(fd[0]);
    fd[0] = -1;
  }
  void close_write() {
    if (fd[1] >= 0) close(fd[1]);
    fd[1] = -1;
  }
  void send(const void* data, size_t n) {
    if (write(fd[1], data, n) != static_cast<ssize_t>(n)) throw std::runtime_error("pipe write failed");
  }
  // Reads n bytes or fails after `timeout_ms` (a hung child must not hang the test).
  bool receive(void* data, size_t n, int timeout_ms = 60000) {
    size_t got = 0;
    while (got < n) {
      pollfd p{fd[0], POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return false;
      ssize_t r = read(fd[0], static_cast<char*>(data) + got, n - got);
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  }
  bool closed_by_writer() {  // for the child: the parent closed its end
    pollfd p{fd[0], POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }
};

int wait_for(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_F(Files, AFileLockedByAnotherProgramIsBusyAfterTheWait) {
  std::string path = dir / "locked.db";
  {
    Application app(path);
    app.must("CREATE TABLE t (x)");
    app.must("INSERT INTO t VALUES (1)");
  }
  Pipe go, ready, stop;
  pid_t child = fork_child([&] {
    go.close_write();
    ready.close_read();
    stop.close_write();
    Application app(path);
    char c;
    if (!go.receive(&c, 1)) return 3;
    if (!app.run("BEGIN EXCLUSIVE")) return 4;  // rollback-journal mode: no one else may even read
    ready.send("r", 1);
    stop.receive(&c, 1, 120000);  // until the parent closes it
    return 0;
  });
  go.close_read();
  ready.close_write();
  stop.close_read();

  Database db(path, milliseconds(300));  // opened before the lock
  go.send("g", 1);
  char c;
  ASSERT_TRUE(ready.receive(&c, 1));

  std::string message;
  EXPECT_EQ(kind_of([&] { Database other(path, milliseconds(300)); }, &message), Error::Kind::Busy);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("in use by another program"), std::string::npos) << message;
  EXPECT_NE(message.find("waited 300 ms"), std::string::npos) << message;
  EXPECT_EQ(kind_of([&] { Snapshot s(db); }, &message), Error::Kind::Busy);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_EQ(kind_of([&] { Statement(db, "SELECT count(*) FROM t").step(); }, &message), Error::Kind::Busy);
  EXPECT_NE(message.find("waited 300 ms"), std::string::npos) << message;

  stop.close_write();
  EXPECT_EQ(wait_for(child), 0);
  // The lock was the cause: without it the same reads work.
  Snapshot s(db);
  Statement count(s.reader(), "SELECT count(*) FROM t");
  ASSERT_TRUE(count.step());
  EXPECT_EQ(count.int64(0), 1);
}

TEST_F(Files, AnUnfinishedTransactionOfAStoppedApplicationIsNamedAndLeftAlone) {
  std::string path = dir / "crashed.db";
  {
    Application app(path);
    app.must("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    app.must(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
        "INSERT INTO t SELECT i, 'value' FROM n");
  }
  // The application dies in the middle of a transaction: its rollback journal stays next to the file (hot).
  pid_t child = fork_child([&] {
    Application app(path);
    // A small cache makes SQLite write changed pages into the file before COMMIT (after syncing the journal).
    if (!app.run("PRAGMA cache_size = 10") || !app.run("BEGIN") || !app.run("UPDATE t SET v = v || ' changed'"))
      return 3;
    _exit(0);  // no COMMIT, no ROLLBACK, no close
  });
  ASSERT_EQ(wait_for(child), 0);
  ASSERT_TRUE(fs::exists(path + "-journal"));
  std::string before = file_bytes(path), journal = file_bytes(path + "-journal");
  std::string message;
  EXPECT_EQ(kind_of([&] { Database db(path); }, &message), Error::Kind::Other);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("unfinished transaction"), std::string::npos) << message;
  EXPECT_NE(message.find(path + "-journal"), std::string::npos) << message;
  // A read-only reader rolls nothing back: both files are as the application left them.
  EXPECT_TRUE(file_bytes(path) == before);
  EXPECT_TRUE(file_bytes(path + "-journal") == journal);
}

TEST_F(Files, ReadingARollbackJournalFileLeavesItByteForByteAsItWas) {
  std::string path = dir / "app.db";
  {
    Application app(path);
    app.must("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)");
    app.must(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000) "
        "INSERT INTO big SELECT i, printf('row %08d', i) FROM n");
  }
  std::string before = file_bytes(path);
  auto mtime = fs::last_write_time(path);
  fs::create_directory(dir / "tmp");
  const char* old_tmpdir = std::getenv("TMPDIR");
  std::string saved = old_tmpdir ? old_tmpdir : "";
  setenv("TMPDIR", (dir / "tmp").c_str(), 1);
  std::string copy;
  {
    Database db(path);
    EXPECT_FALSE(db.wal());
    read_tables(db, {"big"});
    Snapshot s(db);
    copy = s.copy_path();
    EXPECT_EQ(copy.rfind(dir / "tmp/", 0), 0u) << copy;  // under TMPDIR
    EXPECT_TRUE(fs::exists(copy));
    EXPECT_NE(s.how().find("backup copy"), std::string::npos) << s.how();
    EXPECT_EQ(s.restarts(), 0);
    Statement rows(s.reader(), "SELECT count(*), sum(length(payload)) FROM big");
    ASSERT_TRUE(rows.step());
    EXPECT_EQ(rows.int64(0), 30000);
  }
  if (old_tmpdir)
    setenv("TMPDIR", saved.c_str(), 1);
  else
    unsetenv("TMPDIR");
  EXPECT_FALSE(fs::exists(copy));
  EXPECT_TRUE(fs::is_empty(dir / "tmp"));
  std::string after = file_bytes(path);
  EXPECT_EQ(after.size(), before.size());
  EXPECT_TRUE(after == before) << "the file's bytes changed";
  EXPECT_EQ(fs::last_write_time(path), mtime);
  EXPECT_EQ(dir.names(), (std::vector<std::string>{"app.db", "tmp"}));  // no -journal, -wal, -shm
}

// The writer test. The application commits small transactions all the time: each inserts one row into `a` and
// one into `b` (so count(a) = count(b) in every consistent state) and moves one unit of `n` between two rows of
// `big` (so sum(n) never changes). Meanwhile snapshots are taken and every row of `big` is read through them,
// some slowly, as a run does that sends the rows over a slow link.
struct WriterReport {
  int64_t commits = 0;
  int64_t failures = 0;
  int64_t max_wait_us = 0;  // the longest transaction, BEGIN to COMMIT, as the writer timed it
};

constexpr int64_t big_rows = 200000;

void make_writer_file(const std::string& path, bool wal) {
  Application app(path);
  if (wal) app.must("PRAGMA journal_mode = WAL");
  app.must("CREATE TABLE big (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, payload TEXT)");
  app.must("CREATE TABLE a (id INTEGER PRIMARY KEY, k INTEGER)");
  app.must("CREATE TABLE b (id INTEGER PRIMARY KEY, k INTEGER)");
  app.must("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(big_rows) +
           ") INSERT INTO big SELECT i, 10, printf('payload of row %08d', i) FROM n");
}

WriterReport writer(const std::string& path, Pipe& ready, Pipe& stop, uint32_t seed) {
  WriterReport report;
  Application app(path);
  // The disk is not under test: commits without fsync, so that what a commit waits for is locks only.
  app.must("PRAGMA synchronous = OFF");
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> row(1, big_rows);
  for (int64_t k = 1; !stop.closed_by_writer(); ++k) {
    int64_t from = row(rng), to = row(rng);
    std::string tx = "BEGIN IMMEDIATE; INSERT INTO a (k) VALUES (" + std::to_string(k) +
                     "); INSERT INTO b (k) VALUES (" + std::to_string(k) +
                     "); UPDATE big SET n = n - 1 WHERE id = " + std::to_string(from) +
                     "; UPDATE big SET n = n + 1 WHERE id = " + std::to_string(to) + "; COMMIT";
    auto t0 = std::chrono::steady_clock::now();
    bool ok = app.run(tx);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    if (!ok) {
      ++report.failures;
      app.run("ROLLBACK");
    } else {
      ++report.commits;
    }
    report.max_wait_us = std::max<int64_t>(report.max_wait_us, us);
    if (k == 1) ready.send("r", 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return report;
}

void writer_test(const std::string& path, bool wal) {
  make_writer_file(path, wal);
  // The writer's choice of rows; STAGESYNC_SQLITE_SEED=N replays one.
  const char* fixed = std::getenv("STAGESYNC_SQLITE_SEED");
  uint32_t seed = fixed && *fixed ? static_cast<uint32_t>(std::strtoul(fixed, nullptr, 10)) : std::random_device{}();
  SCOPED_TRACE("writer seed " + std::to_string(seed) + " (STAGESYNC_SQLITE_SEED)");
  Pipe ready, stop, result;
  pid_t child = fork_child([&] {
    ready.close_read();
    stop.close_write();
    result.close_read();
    WriterReport r = writer(path, ready, stop, seed);
    result.send(&r, sizeof r);
    return 0;
  });
  ready.close_write();
  stop.close_read();
  result.close_write();
  char c;
  ASSERT_TRUE(ready.receive(&c, 1)) << "the writer did not start";

  Database db(path);
  EXPECT_EQ(db.wal(), wal);
  int64_t first_a = -1, last_a = -1;
  int restarts = 0;
  std::string how;
  // Snapshots 0 and 2 are read at the pace of a slow link, 1.2 s each: a snapshot that held the file's lock
  // while it is read (a read transaction in rollback-journal mode) would make a commit wait that long.
  constexpr int snapshots = 4;
  for (int i = 0; i < snapshots; ++i) {
    bool slow = i % 2 == 0;
    Snapshot s(db);
    how = s.how();
    restarts += s.restarts();
    EXPECT_EQ(s.copy_path().empty(), wal);
    int64_t rows = 0, sum = 0;
    Statement all(s.reader(), "SELECT id, n, payload FROM big");
    while (all.step()) {
      ++rows;
      sum += all.int64(1);
      if (slow && rows % (big_rows / 10) == 0) std::this_thread::sleep_for(milliseconds(120));
    }
    Statement counts(s.reader(), "SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b)");
    ASSERT_TRUE(counts.step());
    int64_t a = counts.int64(0), b = counts.int64(1);
    EXPECT_EQ(rows, big_rows) << "snapshot " << i;
    EXPECT_EQ(sum, 10 * big_rows) << "snapshot " << i << ": a transaction seen in part";
    EXPECT_EQ(a, b) << "snapshot " << i << ": a transaction seen in part";
    if (first_a < 0) first_a = a;
    last_a = a;
  }
  stop.close_write();
  WriterReport report;
  ASSERT_TRUE(result.receive(&report, sizeof report)) << "the writer sent no report";
  EXPECT_EQ(wait_for(child), 0);
  std::cout << (wal ? "WAL" : "rollback journal") << ": " << report.commits << " commits, longest "
            << report.max_wait_us / 1000.0 << " ms; last snapshot: " << how << "; " << restarts
            << " copy restarts in all\n";
  EXPECT_GT(report.commits, 0);
  EXPECT_EQ(report.failures, 0);
  EXPECT_LT(report.max_wait_us, 1000000) << "a commit of the application waited a second or more";
  EXPECT_GT(last_a, first_a) << "the writer committed nothing while the snapshots were read";
}

TEST_F(Files, AWriterInWalModeIsNeverBlockedAndEverySnapshotIsConsistent) { writer_test(dir / "wal.db", true); }

TEST_F(Files, AWriterInRollbackJournalModeIsNeverBlockedAndEverySnapshotIsConsistent) {
  writer_test(dir / "journal.db", false);
}

}  // namespace
}  // namespace stagesync::sqlite
