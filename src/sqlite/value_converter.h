// SQLite stores any value in any column. ValueConverter turns one value into the text a PostgreSQL COPY
// (FORMAT text) accepts for the TARGET column's type, or says why it cannot: it never truncates, rounds a
// non-integral number into an integer column, or guesses what a value meant.
//
// By target type (base_type, "pg_catalog." + name):
//  int2, int4, int8   INTEGER in range; REAL with an integral value in range; TEXT that is an optional sign and
//                     digits only (no spaces, no point). Anything else is an error.
//  float4, float8     INTEGER; REAL (shortest text that reads back the same double); TEXT that is a number
//                     (std::from_chars syntax, "inf"/"nan" included). float4: out of its range is an error.
//  numeric            INTEGER; REAL (shortest round-trip text); TEXT that is a number, passed as written (its
//                     digits are kept, even beyond a double's precision).
//  text, varchar,     TEXT that is valid UTF-8 without NUL (invalid UTF-8 is an error naming the byte, never
//  bpchar             mangled); INTEGER and REAL as their text (REAL: shortest round-trip, so 1.0 is "1");
//                     BLOB only when it is valid UTF-8. varchar(n)/char(n): more than n characters is an error
//                     unless the excess is spaces (which PostgreSQL drops, as it does for any input).
//  bool               INTEGER 0/1, REAL 0.0/1.0, TEXT 0/1/true/false/t/f/yes/no in any case.
//  date               TEXT "YYYY-MM-DD" (or a date-time at exactly midnight without offset); REAL Julian day
//                     number and INTEGER Unix seconds at midnight UTC. A time of day is an error, not dropped.
//  timestamp          TEXT "YYYY-MM-DD[( |T)HH:MM[:SS[.SSS]]]" (date alone: midnight); REAL Julian day and
//                     INTEGER Unix seconds as the UTC date-time SQLite's datetime() gives. A text with "Z" or an
//                     offset is an error: the column holds wall-clock times, and which zone's wall clock is
//                     unknown; dropping the offset would shift the value silently (use a timestamptz target).
//  timestamptz        TEXT with "Z"/"+HH:MM": that instant; without: the wall-clock time in `timezone` (UTC when
//                     empty); REAL Julian day and INTEGER Unix seconds: that instant in UTC.
//  time               TEXT "HH:MM[:SS[.SSS]]".
//  bytea              BLOB and TEXT: their bytes, as \x hex.
//  uuid               TEXT as written (PostgreSQL validates it); BLOB of exactly 16 bytes as the uuid it holds.
//  anything else      (json, jsonb, enums, intervals, ...) TEXT as written (valid UTF-8), INTEGER and REAL as
//                     their text; PostgreSQL validates. BLOB is an error.
// NULL is always \N (a NOT NULL target refuses it later, like any refused row). Ranges of dates: years 1-9999.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "catalog/table_schema.h"

namespace stagesync::sqlite {

class ValueConverter {
 public:
  // `target`: the target column (base_type like "pg_catalog.int4", type for messages, max_length).
  // `timezone` (may be empty: UTC): where zone-less date-times are meant, for timestamptz targets; appended to
  // the text so that PostgreSQL interprets it ("2024-03-05 10:00:00 Europe/Berlin").
  ValueConverter(const catalog::Column& target, const std::string& timezone = "");

  // Appends the value as ONE field of a COPY text line: escaped, NULL as \N. Returns false and sets `why`
  // (e.g. "text 'abc' is not an integer") when it does not convert; `line` is then unspecified.
  bool append(sqlite3_value* value, std::string& line, std::string& why) const;

  enum class Kind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    Bool,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Bytea,
    Uuid,
    Other
  };
  Kind kind() const { return kind_; }

 private:
  // Each appends the converted value to `line`, COPY-escaped where it can hold special characters.
  bool convert(sqlite3_value* v, int type, std::string& line, std::string& why) const;
  bool to_integer(sqlite3_value* v, int type, std::string& line, std::string& why) const;
  bool to_float(sqlite3_value* v, int type, std::string& line, std::string& why) const;
  bool to_numeric(sqlite3_value* v, int type, std::string& line, std::string& why) const;
  bool to_text(sqlite3_value* v, int type, std::string& line, std::string& why) const;
  bool to_bool(sqlite3_value* v, int type, std::string& line, std::string& why) const;
  bool to_date_time(sqlite3_value* v, int type, std::string& line, std::string& why) const;
  bool to_bytea(sqlite3_value* v, int type, std::string& line, std::string& why) const;
  bool to_other(sqlite3_value* v, int type, std::string& line, std::string& why) const;

  Kind kind_ = Kind::Other;
  std::string type_name_;  // for messages: "integer", "character varying(40)", ...
  int max_length_ = -1;
  std::string timezone_;
};

// A value for messages: its type and value, shortened to about 60 characters, non-printable and non-UTF-8
// bytes as \xNN: "text 'abc...'", "integer 42", "real 1.5", "blob of 1024 bytes", "null".
std::string describe_value(sqlite3_value* value);

}  // namespace stagesync::sqlite
