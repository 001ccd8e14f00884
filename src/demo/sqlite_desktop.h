// The reference desktop database (reference_data.h) as a SQLite file, stored the way a desktop application
// built on SQLite stores it: for `stagesync demo --source sqlite`, the SQLite-source tests and the benchmarks.
//
// The file mirrors the PostgreSQL desktop: the same tables (every table of the desktop's `public` schema, a
// partitioned one as a whole: the synced ones and the empty mobile-owned workdiary and learequest), the same
// column names, no primary keys, no foreign keys, no indexes, every row an implicit rowid, duplicates and NULL
// keys kept.
//
// Declared types, as a typical application declares them (PostgreSQL type -> SQLite):
//   integer, bigint, smallint -> INTEGER       varchar(n) -> VARCHAR(n)      character(n) -> CHAR(n)
//   text -> TEXT                               numeric(p,s) -> NUMERIC(p,s)  real, double -> REAL
//   date -> DATE                               timestamp -> DATETIME         boolean -> BOOLEAN
//   bytea -> BLOB                              timestamptz -> DATETIME (its UTC time)
// except the date-time columns listed under "Storage" below that are INTEGER or REAL.
//
// Storage (what the values are; the configuration and the tests depend on it):
//   - integers: INTEGER values. numeric: REAL values (NUMERIC affinity keeps 1.00 as the INTEGER 1).
//   - text: TEXT, byte for byte as in PostgreSQL (UTF-8; non-ASCII text, quotes, backslashes, tabs and
//     newlines kept).
//   - date: ISO text "YYYY-MM-DD".
//   - timestamp, by default: ISO text "YYYY-MM-DD HH:MM:SS" (as CURRENT_TIMESTAMP writes; a fraction of a
//     second, which the reference data does not have, follows as PostgreSQL writes it: ".25", ".123456").
//   - Unix seconds (INTEGER): jobtasks.created_at and jobtasks.updated_at. Whole seconds since
//     1970-01-01 00:00:00 of the timestamp read as UTC, as strftime('%s', ...) and unixepoch() compute
//     them; a fraction of a second is dropped. datetime(v, 'unixepoch') gives the timestamp back.
//   - Julian day number (REAL): mbreminder.created_at and mbreminder.updated_at, as julianday() computes
//     it for the timestamp read as UTC: exactly (milliseconds since -4713-11-24 12:00) / 86400000.0, so
//     SQLite's datetime(v) (and any reader that rounds v * 86400000 to whole milliseconds, as SQLite does)
//     gives the timestamp back exactly, to the millisecond.
//   - boolean: INTEGER 0 or 1 (the reference schema has none; any boolean column of the desktop would be
//     written so). bytea: BLOB, byte for byte.
//   - NULL: NULL, whatever the column.
// The ISO, Unix-seconds and Julian values all denote the same UTC wall-clock time: the SQLite configuration
// says `timezone: UTC` (SQLite applications write UTC: CURRENT_TIMESTAMP, unixepoch(), julianday('now')), so
// a sync from the file and a sync from a PostgreSQL desktop whose session zone is UTC write the same values.
//
// Defaults: every created_at and updated_at column has the default an application would give it in its
// storage (CURRENT_TIMESTAMP; CAST(strftime('%s', 'now') AS INTEGER); julianday('now')). There are no
// triggers: the change statements below set updated_at themselves, as an application does.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "pg/connection.h"

namespace stagesync::demo {

// The file could not be written (it exists already, SQLite failed, a value has no SQLite form). Reading the
// PostgreSQL desktop fails with pg::Error as usual.
class SqliteDesktopError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes the desktop tables of `desktop` (a PostgreSQL database filled by desktop_schema_sql() and
// desktop_data_sql()) into a NEW SQLite file at `path`: refuses an existing file (the file is created
// exclusively; an existing one is never touched). Reads every table in one REPEATABLE READ READ ONLY
// transaction (COPY out, row by row) and writes them in one SQLite transaction with prepared INSERTs, so
// memory stays bounded whatever the scale. `journal` is "wal" or "delete" (the file's journal mode, as
// PRAGMA journal_mode reports it afterwards). While the fresh file is written, synchronous is OFF. On any
// failure the partly written file (and its -wal, -shm, -journal) is removed. Returns rows written per table.
std::map<std::string, int64_t> write_sqlite_desktop(pg::Connection& desktop, const std::string& path,
                                                    const std::string& journal = "wal");

// The demo configuration (demo_config_yaml) for the SQLite file at `sqlite_path` instead of a PostgreSQL
// desktop: `source: { sqlite: PATH, timezone: UTC }`; the same owner, tables, keys, lookups, references and
// duplicates. Without the `reverse:` entries: stagesync never writes a SQLite file.
std::string sqlite_demo_config(const std::string& target_url, const std::string& sqlite_path);

// SQLite statements that change the SQLite desktop the way desktop_changes_sql() changes the PostgreSQL one
// before the demo's incremental sync, run in order once, on one connection, on a file from
// write_sqlite_desktop(): delete one client (id > 11, with jobs, not the client of jobs 1..5) with its jobs
// and their tasks (through a TEMP table naming it, dropped at the end), delete ~0.25% of jobtasks, update ~1%
// of jobshead and jobtasks rows, rename client 7 to non-ASCII text, update one reminder and ~1% (at least one) of the
// 'N' taskchecklist rows; change two keys: one mbremdetail row (of an existing reminder) gets a new remdetid, one
// jobtasks row (of an existing job) a new task_id unused in its job; insert 5 clients, 20 jobs with 2 tasks
// each, 3 taskchecklist rows (two identical) and a reminder with 2 details. Every update sets updated_at in
// the column's storage. Which rows change depends on `seed`; the statements are deterministic except for the
// updated_at values (the current time).
std::vector<std::string> sqlite_desktop_changes(uint64_t seed);

}  // namespace stagesync::demo
