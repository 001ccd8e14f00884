// What `stagesync init` reads of one database: every table a configuration can
// name, with its columns, unique indexes, foreign keys, column defaults and row
// triggers. CatalogReader is the one seam between init and a kind of database:
// PostgresCatalogReader (here) and SqliteCatalogReader (sqlite_catalog_reader.h) implement the same two calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catalog/table_facts.h"
#include "catalog/table_schema.h"
#include "pg/connection.h"
#include "plan/target_triggers.h"

namespace stagesync::init {

struct TableEntry {
  std::string name;  // as a configuration names it (the table is visible on the search path)
  catalog::TableSchema schema;
  catalog::TableFacts facts;
  std::vector<plan::TargetTrigger> triggers;  // BEFORE INSERT/UPDATE row triggers and what they assign
};

struct DatabaseCatalog {
  std::string where;                  // host:port/database, for comments and messages
  std::vector<TableEntry> tables;     // ordered by name
  std::vector<std::string> unusable;  // tables a configuration cannot name, each with the reason

  const TableEntry* find(const std::string& name) const;
};

// Key columns of a source table whose repetitions to count.
struct KeyProbe {
  std::string table;  // TableEntry::name
  std::vector<std::string> key;
};

class CatalogReader {
 public:
  virtual ~CatalogReader() = default;
  // Every table of the database's own schemas (not system or extension tables, not stagesync's).
  virtual DatabaseCatalog read() = 0;
  // For each probe, how many distinct key values (NULLs aside) occur on more than one row.
  virtual std::vector<int64_t> repeated_keys(const std::vector<KeyProbe>& probes) = 0;
};

// Reads a PostgreSQL database in read-only transactions (the session's
// default_transaction_read_only is set before anything else is sent):
// read() costs two round trips (the table list, then every fact of every
// table in one pipeline), repeated_keys() one, whatever the number of tables.
class PostgresCatalogReader : public CatalogReader {
 public:
  explicit PostgresCatalogReader(pg::Connection& conn);
  DatabaseCatalog read() override;
  std::vector<int64_t> repeated_keys(const std::vector<KeyProbe>& probes) override;

 private:
  pg::Connection& conn_;
};

}  // namespace stagesync::init
