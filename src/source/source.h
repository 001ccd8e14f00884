// The source seam: everything above it (plan/, stage/, delta/, apply/, run/)
// reads a source database through this interface, never through a
// connection of its own. A source answers three questions: what tables and
// columns it has, how its rows of one consistent state reach the run's
// staging tables (in target shape), and what an incremental run may skip.
//
// Two kinds exist: PostgreSQL (source/postgres/: rows passed through binary
// COPY, changes found by transaction ids and key digests) and SQLite
// (source/sqlite/: rows converted value by value, changes found by row
// fingerprints). docs/architecture.md says how a third kind is added.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "catalog/table_schema.h"
#include "pg/pipeline.h"

namespace stagesync::source {

struct StageRun;  // source/stage_run.h

class Source {
 public:
  virtual ~Source() = default;

  // For messages and the run log: "PostgreSQL 15, db@host:port", "SQLite file /path".
  virtual std::string describe() const = 0;

  // Every one of `names` (configured table names; lookups' tables too), as
  // catalog::TableSchema; nullopt for a table that does not exist (a plan
  // problem, not an error). Throws for a source that cannot be read at all
  // (connection, permissions, not a database file): the message names it.
  virtual catalog::Tables read_tables(const std::vector<std::string>& names) = 0;

  // true: values are converted one by one into the target column's type as
  // they are read (a SQLite column may hold any value): plan::resolve() checks
  // no column type pair, and a value that does not convert stops the run
  // before anything is applied, naming table, column, row and value.
  // false: by column type (PostgreSQL: casts the plan checks up front).
  virtual bool converts_values() const = 0;

  // Statements whose answers stage() needs, added to the run's first target
  // round trip (run::Session::begin_run()). Default: none.
  virtual void before_run(pg::Pipeline& batch, bool incremental) {
    (void)batch;
    (void)incremental;
  }

  // Reads every selected table of `run` into its staging table, all in one
  // consistent state of the source, and fills each TableRun (rows read,
  // method, watermark, deletions). Incremental runs may read less (see
  // TableRun::method); a table proved unchanged is marked so. Throws on any
  // error; nothing has been applied then.
  virtual void stage(StageRun& run) = 0;

  // The run `run_id` committed on the target: what stage() read is the
  // target's now. Best effort: a source that keeps state of its own (SQLite's
  // fingerprints) records it here; losing it costs the next run a longer read,
  // never a wrong result.
  virtual void committed(const std::string& run_id) noexcept { (void)run_id; }
};

}  // namespace stagesync::source
