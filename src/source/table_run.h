// One table's part of a run: how it is read, what its staging holds, and what
// reading and reconciling it counted. run::Session keeps one per plan table
// (index-aligned with plan().tables); tables not selected keep the defaults.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apply/table_sql.h"
#include "delta/change_method.h"
#include "delta/watermark.h"
#include "stage/staging_table.h"

namespace stagesync::source {

struct TableRun {
  std::unique_ptr<stage::StagingTable> staging;  // nullptr: not staged
  std::unique_ptr<apply::TableSql> sql;          // the apply's statements over `staging`
  delta::MethodChoice method;
  delta::Watermark watermark;    // what a successful run records (its snapshot)
  std::string previous_rejects;  // the run whose rejects of this table are current, or empty
  int64_t estimate = -1;         // the source's row estimate (-1: none)
  int64_t rows_read = 0;         // rows staged in this run
  int64_t source_rows = 0;       // in-scope source rows in the run's snapshot
  int64_t target_owned = -1;     // owned in-scope target rows counted while reconciling (-1: not counted)
  int64_t carried_rejects = 0;   // set-aside keys that stay set aside without being read again
  // The rows set aside earlier and not read again stay set aside (an
  // incremental read that keeps them: stagesync.set_aside is updated by
  // difference, decision 0016); false: this run's rejects are the whole set.
  bool set_aside_kept = false;
  int64_t deletions = 0;         // keys an incremental table lists for deletion
  bool unchanged = false;        // proved unchanged at the source: nothing to prepare or apply
  bool collision_freed = false;  // incremental: a key set aside for a collision is free now (run::Session)
  double stage_seconds = 0;
  // Statements that go with the table's record, in the transaction that
  // writes it (the stored image of its lookups: LookupImages).
  std::vector<std::pair<std::string, std::vector<pg::Param>>> record_sql;
};

}  // namespace stagesync::source
