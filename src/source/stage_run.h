// What a run asks its source to stage (source::Source::stage()), and where
// the answers go. run::Session builds it: the plan; one TableRun per plan
// table, the selected ones with their staging table and apply statements
// created; the target connection, outside any transaction; the run's names.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "apply/strategy.h"
#include "config/config.h"
#include "delta/change_method.h"
#include "pg/connection.h"
#include "plan/sync_plan.h"
#include "report/reporter.h"
#include "source/table_run.h"

namespace stagesync::source {

struct StageRun {
  const config::Config& cfg;
  const plan::SyncPlan& plan;
  std::vector<TableRun>& tables;  // index-aligned with plan.tables
  pg::Connection& target;
  std::string run_id;
  std::string rejects;               // this run's reject table (stage::rejects_table())
  std::vector<std::string>& created;  // every work table the run created (dropped at its end)
  // Per target table name: its watermark (JSON) and last successful run, from the target.
  const std::map<std::string, std::pair<std::string, std::string>>& previous;
  bool incremental = false;
  apply::Strategy strategy = apply::Strategy::Merge;
  report::Reporter& out;

  // Table `i` did not change at the source since its last run: nothing to
  // read, compare or apply (an empty deletions table for its children's
  // references). `why` is the method the summary shows.
  void mark_unchanged(size_t i, delta::MethodChoice why);
  // Whether a table `t` references may have new, changed or deleted rows in
  // this run (it is staged and not proved unchanged; a full read cannot tell
  // which rows: always). References with on_orphan: keep do not count: such
  // a child is never set aside or refused for its parent. Ask it once every
  // parent has been decided.
  bool references_changed(const plan::TablePlan& t) const;
  // Reports table `i`'s progress (rows so far, or done).
  void progress(size_t i, int64_t rows, double seconds, bool done) const;
};

}  // namespace stagesync::source
