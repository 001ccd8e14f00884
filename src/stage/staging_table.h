// A staging table in the target's `stagesync` schema, holding one table's
// source rows in target shape. Production tables are not touched while one is
// filled. UNLOGGED: a crash loses its contents, never production data, and the
// next run drops what a crashed run left (leftovers_sql()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "plan/sync_plan.h"
#include "stage/copy_pipe.h"

namespace stagesync::stage {

class StagingTable {
 public:
  // Creates stagesync."s_<run>_<index>" with the staged columns.
  StagingTable(pg::Connection& target, const std::string& run_id, size_t index, const plan::TablePlan& table);

  const std::string& qualified() const { return qualified_; }

  // Streams the table from `source` (inside the caller's snapshot) with
  // binary COPY into this table, then ANALYZEs it. Returns rows loaded.
  // `where` limits the rows read (see source_select()).
  int64_t load(pg::Connection& source, const ProgressFn& progress, const std::string& where = "");
  // The same into `chain`'s current COPY (StagingChain; its ANALYZE is part of the chain).
  int64_t load(pg::Connection& source, const ProgressFn& progress, pg::CopyIn& chain);
  // Adds the rows of `select` (the staged columns, in order) from `source`; no ANALYZE.
  int64_t append(pg::Connection& source, const std::string& select);
  void analyze();
  std::string analyze_sql() const;
  std::string copy_in() const;

 private:
  pg::Connection& target_;
  const plan::TablePlan& table_;
  std::string qualified_;
};

// Full runs: every selected table's COPY (and ANALYZE) in one simple-protocol
// message, so each table after the first starts in the round trip that ends
// the one before (pg::CopyIn::next()). Tables are loaded in the order given;
// nothing is sent before the first load.
class StagingChain {
 public:
  StagingChain(pg::Connection& target, const std::vector<StagingTable*>& tables);
  // Loads the chain's next table, which must be `table`, from `source`.
  int64_t load(StagingTable& table, pg::Connection& source, const ProgressFn& progress);

 private:
  pg::Connection& target_;
  std::vector<StagingTable*> tables_;
  size_t next_ = 0;
  std::unique_ptr<pg::CopyIn> in_;
};

// Creates a table that lives for one run in the stagesync schema: UNLOGGED
// (a crash loses only it), autovacuum off (nothing to gain in one run, and a
// DROP would wait for a worker to be cancelled). Returns `qualified`.
// The CREATE is deferred (pg::Connection::defer): it reaches the server with
// the next statement that uses the table, in the same round trip.
std::string create_work_table(pg::Connection& target, const std::string& qualified, const std::string& columns_ddl);

// stagesync."s_<run>_<index><suffix>": the names of a run's per-table work
// tables, all dropped by leftovers_sql() after a crash.
std::string work_table_name(const std::string& run_id, size_t index, const std::string& suffix = "");

// The table of rows a run set aside (rejects), stagesync."r_<run>".
std::string rejects_table(const std::string& run_id);
void create_rejects_table(pg::Connection& target, const std::string& run_id);

// The statement listing every staging and reject table in the stagesync
// schema (relname): what crashed runs left. Drop them (drop_work_tables())
// only while holding the RunLock, so no other run can own them.
std::string leftovers_sql();
// Drops the named work tables (qualified names) in one round trip.
void drop_work_tables(pg::Connection& target, const std::vector<std::string>& qualified);

}  // namespace stagesync::stage
