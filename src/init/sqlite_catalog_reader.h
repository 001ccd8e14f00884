// What `stagesync init --sqlite PATH` reads of a SQLite desktop file, through the seam a PostgreSQL source
// uses (CatalogReader): its tables with their columns (sqlite::read_tables: declared types, "sqlite:" affinities),
// primary keys, unique indexes, foreign keys and defaults (sqlite::read_facts), and how often chosen keys repeat.
//
// Read-only: the file is opened SQLITE_OPEN_READONLY (sqlite::Database), and the reader is meant to be given a
// sqlite::Snapshot's database (decision 0010), so that the key counts, full scans of the tables, never hold the
// desktop application's commits up (WAL: a read transaction; rollback journal: a copy of the file).
//
// What it does not read, and why that is no loss:
//  - triggers: none are read. init reads triggers only to learn which columns the target's server sets
//    (compare_ignore); a source's triggers decide nothing in the file (the PostgreSQL reader's go unused too),
//    and a SQLite trigger's body is the application's business, not the sync's.
//  - views: not offered, as on PostgreSQL (a view shows another table's rows; a configuration may still name one).
//  - virtual tables (full-text indexes, R*Trees): listed as unusable, with the reason; their shadow tables
//    (the module's storage, e.g. docs_fts_data) are left out like SQLite's own sqlite_* tables.
// No round trips: the file is local.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "init/catalog_reader.h"
#include "sqlite/database.h"

namespace stagesync::init {

class SqliteCatalogReader : public CatalogReader {
 public:
  // `where` describes the file in comments and messages ("SQLite file /home/me/desktop.db"): the database read
  // may be a snapshot's copy under TMPDIR.
  SqliteCatalogReader(sqlite::Database& db, std::string where);
  // Tables of the main schema ordered by name (bytewise, as PostgresCatalogReader orders them). Throws
  // sqlite::Error when the file cannot be read.
  DatabaseCatalog read() override;
  // One GROUP BY per probe, comparing values as the target will (BINARY collation, whatever the column
  // declares: 'a' and 'A' are two keys on PostgreSQL even in a COLLATE NOCASE column).
  std::vector<int64_t> repeated_keys(const std::vector<KeyProbe>& probes) override;

 private:
  sqlite::Database& db_;
  std::string where_;
};

}  // namespace stagesync::init
