// Prepare: judge the staged rows of one table before anything is applied.
//
// In order: rows with a NULL key are set aside; duplicate keys fail the run
// or keep the newest row; values the target would refuse (NOT NULL, length)
// fail the run naming table, key, column and reason; rows whose key is taken
// by a row the sync does not own are set aside as collisions; references are
// judged against the parents as they will be after this run (staged rows of
// parents in this run, plus every parent row the sync does not own, or every
// existing row when the parent is not in this run) with keep/skip/fail.
// Only staging tables are written. Parents must be prepared before children.
//
// prepare_table() adds its statements to a pipeline: every table's judgement
// travels in one round trip. Counts are filled in, and a refusal
// (DataRefused) is thrown, when the pipeline runs.
#pragma once

#include <vector>

#include "apply/table_counts.h"
#include "apply/table_sql.h"
#include "pg/pipeline.h"

namespace stagesync::apply {

// `staged[i]` is the TableSql of plan table i when it is staged in this run, else nullptr.
void prepare_table(pg::Pipeline& p, const TableSql& table, const std::string& rejects_table,
                   const std::vector<const plan::TablePlan*>& plans, const std::vector<const TableSql*>& staged,
                   TableCounts& counts);

// Target foreign keys no configured reference covers (plan::TargetForeignKey):
// refuses the run (DataRefused, when the pipeline runs) when staged rows would
// violate one, naming the constraint, examples, the count and the reference
// that would handle them. Only reads. Add it after every table of the run is
// prepared: the parents' staged rows must be final.
void judge_foreign_keys(pg::Pipeline& p, const TableSql& table, const plan::SyncPlan& plan,
                        const std::vector<const TableSql*>& staged);

}  // namespace stagesync::apply
