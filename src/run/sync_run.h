// `stagesync sync`: stage every selected table, then change the target in one
// transaction (or one per table), recording the run in the same transaction.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "apply/strategy.h"
#include "config/config.h"
#include "pg/pipeline.h"
#include "report/reporter.h"
#include "run/session.h"

namespace stagesync::run {

struct SyncOptions {
  SessionOptions session;
  std::string mode = "full";  // full | incremental
  apply::Strategy strategy = apply::Strategy::Merge;
  bool per_table_transactions = false;
  bool accept_data_loss = false;
  // `stagesync plan`: stage and judge as a sync would, count what it would
  // insert, update and delete, report guards, then roll back.
  bool plan_only = false;
  // --allow-mass-delete: every table (all) or the named source/target tables.
  bool allow_mass_delete_all = false;
  std::vector<std::string> allow_mass_delete;
  // `follow` only: statements added to the run's last target round trip,
  // before its COMMIT (one transaction with the run's records), e.g. the
  // follower's confirmed LSN. Not called by plan, truncate-first or per-table runs.
  std::function<void(pg::Pipeline&, const std::string& run_id)> record_in_commit;
  // `follow` only: run once (the follower retries a batch itself).
  bool no_retry = false;
};

// Returns the summary of a completed run. Throws CheckFailed, LockBusy,
// Refused, MassChangeRefused, apply::DataRefused, pg::Error, state::MetadataError; in every such
// case the target tables are as they were before the run.
report::RunSummary run_sync(const config::Config& cfg, const SyncOptions& options, report::Reporter& out);

// What runs a forward sync: run_sync(), or a caller's routing around it
// (the CLI routes `incremental: { capture: logical }` through `follow`'s slot:
// follow/capture.h).
using SyncFunction = std::function<report::RunSummary(const config::Config&, const SyncOptions&, report::Reporter&)>;

}  // namespace stagesync::run
