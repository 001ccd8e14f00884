#include "follow/capture.h"

#include <algorithm>

#include "follow/follow_run.h"

namespace stagesync::follow {

bool captures_logically(const config::Config& cfg, const run::SyncOptions& o, std::string& why_not) {
  why_not.clear();
  if (o.mode != "incremental" || o.plan_only) return false;
  if (std::none_of(cfg.tables.begin(), cfg.tables.end(),
                   [&](const config::Table& t) { return cfg.captures_logically(t); }))
    return false;
  if (!o.session.tables.empty()) {
    why_not = "--tables: the replication slot's position covers every table";
  } else if (o.per_table_transactions) {
    why_not = "--transaction per-table: a batch is one target transaction";
  } else if (o.strategy != apply::Strategy::Merge) {
    why_not = "strategy " + apply::to_string(o.strategy) + " rewrites every owned row";
  } else if (!cfg.source.sqlite.empty()) {
    why_not = "the desktop is a SQLite file (logical decoding is PostgreSQL's)";
  }
  return why_not.empty();
}

report::RunSummary sync(const config::Config& cfg, const run::SyncOptions& o, report::Reporter& out) {
  std::string why_not;
  if (!captures_logically(cfg, o, why_not)) {
    if (!why_not.empty()) out.warning("incremental: { capture: logical } is not used for this run: " + why_not);
    return run::run_sync(cfg, o, out);
  }
  FollowOptions f;
  f.once = true;
  f.capture = true;
  f.batch = o;
  f.lock_wait_seconds = o.session.lock_wait_seconds;
  f.max_retained_wal = cfg.follow.max_retained_wal;
  f.interval_seconds = cfg.follow.interval;
  report::RunSummary s = run_follow(cfg, f, out);
  s.command = "sync";
  s.mode = s.mode == "polling" ? "incremental" : "incremental (capture: logical)";
  return s;
}

}  // namespace stagesync::follow
