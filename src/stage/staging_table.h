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
#include "pg/copy_stream.h"

namespace stagesync::stage {

class StagingTable {
 public:
  // Creates stagesync."s_<run>_<index>" with the staged columns.
  StagingTable(pg::Connection& target, const std::string& run_id, size_t index, const plan::TablePlan& table);

  const std::string& qualified() const { return qualified_; }

  // Deferred ANALYZE (it travels with the next statement).
  void analyze();
  std::string analyze_sql() const;
  // The COPY that loads it: the staged columns in order, in `format` (a
  // source decides: "binary" rows passed through from a PostgreSQL source,
  // "text" rows a source converts itself).
  std::string copy_in(const std::string& format = "binary") const;

 private:
  pg::Connection& target_;
  const plan::TablePlan& table_;
  std::string qualified_;
};

// Writes one table's rows into a COPY that has started (in the format its
// COPY statement names); returns the rows the server stored (CopyIn::finish()).
using CopyFill = std::function<int64_t(pg::CopyIn& in)>;

// Full runs: every selected table's COPY (and ANALYZE) in one simple-protocol
// message, so each table after the first starts in the round trip that ends
// the one before (pg::CopyIn::next()). Tables are loaded in the order given;
// nothing is sent before the first load.
class StagingChain {
 public:
  StagingChain(pg::Connection& target, const std::vector<StagingTable*>& tables, std::string format = "binary");
  // Loads the chain's next table, which must be `table`, with `fill`.
  int64_t load(StagingTable& table, const CopyFill& fill);

 private:
  pg::Connection& target_;
  std::vector<StagingTable*> tables_;
  std::string format_;
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

// The table of rows a run set aside (rejects), stagesync."r_<run>", and the
// table of earlier set-aside rows the run released (read again or gone at the
// source: stagesync.set_aside loses them when the run commits, decision 0016),
// stagesync."r_<run>_x" (table_name, row_key). Both created by create_rejects_table().
std::string rejects_table(const std::string& run_id);
std::string released_table(const std::string& run_id);
void create_rejects_table(pg::Connection& target, const std::string& run_id);

// The statement listing every staging and reject table in the stagesync
// schema (relname): what crashed runs left. Drop them (drop_work_tables())
// only while holding the RunLock, so no other run can own them.
std::string leftovers_sql();
// Drops the named work tables (qualified names) in one round trip.
void drop_work_tables(pg::Connection& target, const std::vector<std::string>& qualified);

}  // namespace stagesync::stage
