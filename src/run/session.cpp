#include "run/session.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

#include "pg/pipeline.h"
#include "run/pooler_check.h"
#include "run/run_errors.h"
#include "source/postgres/postgres_source.h"
#include "source/sqlite/sqlite_source.h"
#include "state/history.h"
#include "state/metadata.h"
#include "state/run_lock.h"

namespace stagesync::run {
namespace {

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// Qualified names of the tables leftovers_sql() listed.
std::vector<std::string> leftover_names(const pg::Result& r) {
  std::vector<std::string> names;
  for (int i = 0; i < r.rows(); ++i) names.push_back(pg::qualified("stagesync", r.text(i, 0)));
  return names;
}

std::string os_user() {
  const char* u = std::getenv("USER");
  return u ? u : std::to_string(getuid());
}

}  // namespace

std::unique_ptr<pg::Connection> connect_side(const std::string& side, const pg::Endpoint& endpoint,
                                             bool check_session) {
  try {
    auto conn = std::make_unique<pg::Connection>(endpoint);
    return check_session ? require_own_session(side, std::move(conn), endpoint) : std::move(conn);
  } catch (const pg::Error& e) {
    throw pg::Error(side + ": " + e.what(), e.diagnostics(), e.is_connection_loss());
  }
}

pg::Endpoint source_endpoint(const config::Config& cfg) {
  return pg::Endpoint{cfg.source.url, cfg.source.password_env, "stagesync (source)", 10};
}

pg::Endpoint target_endpoint(const config::Config& cfg) {
  return pg::Endpoint{cfg.target.url, cfg.target.password_env, "stagesync", 10};
}

std::unique_ptr<source::Source> open_source(const config::Config& cfg) {
  if (cfg.source.sqlite.empty()) {
    return std::make_unique<source::postgres::PostgresSource>(connect_side("source", source_endpoint(cfg)), cfg);
  }
  try {
    return std::make_unique<source::sqlite_source::SqliteSource>(
        cfg, source::sqlite_source::default_cache_path(cfg.path));
  } catch (const sqlite::Error& e) {
    // A file that is missing, not a database or damaged is a configuration problem;
    // a file locked for longer than the wait is an error of the run (exit 4, like a lost connection).
    if (e.kind() == sqlite::Error::Kind::Busy || e.kind() == sqlite::Error::Kind::Other) throw;
    throw CheckFailed({std::string("source: ") + e.what()});
  }
}

std::string scope_key(const config::Config& cfg) {
  std::string key;
  for (const auto& [col, value] : cfg.scope.equals) key += col + "=" + value + ";";
  return key;
}

Session::Session(const config::Config& cfg, const SessionOptions& options, report::Reporter& out)
    : cfg_(cfg), options_(options), out_(out) {}

void Session::open() {
  source_ = open_source(cfg_);
  if (options_.configure_source) options_.configure_source(*source_);
  if (KeptTarget* keep = options_.keep) {
    if (keep->usable()) {
      // The follower's session of its previous batch: it holds the run lock,
      // its settings are made and the metadata is current (no other run could
      // change it). The source's side of the plan is read again (the source is
      // near, the target across the link); the target's is checked by begin_run().
      target_ = std::move(keep->connection);
      kept_ = holds_lock_ = true;
      if (source_->read_tables(plan::source_table_names(cfg_)) == keep->source_tables) {
        plan_ = std::move(*keep->plan);
        source_tables_ = std::move(keep->source_tables);
        target_catalog_ = std::move(keep->target_catalog);
        check_catalog_ = true;
        keep->forget();
        return;
      }
      out_.info("the source's tables changed since the previous batch: resolving the plan again");
    }
    keep->forget();
  }
  if (!target_) {
    // The target's session check is folded into the run's round trips (begin_run()).
    target_ = connect_side("target", target_endpoint(cfg_), false);
    session_mark_.mark(*target_);
    configure_target();
  }
  plan::Resolution r = plan::resolve(cfg_, *source_, *target_, options_.tables);
  if (!r.problems.empty()) throw CheckFailed(std::move(r.problems));
  for (const auto& n : r.run_notes) out_.info(n);
  for (const auto& w : r.warnings) out_.warning(w);
  plan_ = std::move(r.plan);
  source_tables_ = std::move(r.source_tables);
  target_catalog_ = std::move(r.target_catalog);
  if (plan_.selected().empty()) throw CheckFailed({"the configuration lists no tables to sync"});
}

void Session::keep() noexcept {
  KeptTarget* keep = options_.keep;
  if (!keep || !holds_lock_ || !target_ || !target_->is_alive()) return;
  keep->connection = std::move(target_);
  keep->plan = plan_;
  keep->source_tables = source_tables_;
  keep->target_catalog = target_catalog_;
}

void Session::configure_target() {
  // Session settings travel with the first statement (no round trip of their own).
  target_->defer("SET statement_timeout = 0");
  // The sync waits at most this long for a row lock held by the app; then the
  // attempt fails with 55P03 and is retried (the app is never blocked by a queue behind us for long).
  target_->defer("SET lock_timeout = '10s'");
  // PostgreSQL 14+: a backend whose client died mid-statement stops within a
  // second instead of finishing the statement (and holding the run lock).
  if (target_->server_version() >= 140000) target_->defer("SET client_connection_check_interval = '1s'");
}

std::string Session::begin_run(const std::string& command, const std::string& mode, const std::string& strategy) {
  std::string key = scope_key(cfg_);
  // First round trip: the lock, what a crashed run left, and the metadata
  // version (last: it fails when the schema does not exist yet, which the
  // slow path below handles; a session advisory lock outlives that rollback).
  // A transaction pooler is refused before the lock is tried: the probe
  // connection first, then the lock only in the session marked at connect.
  // A kept session (a follower's later batch) skips all of it: it holds the
  // lock, and what a crashed run leaves is dropped by the run that finds the lock free.
  std::vector<std::string> leftovers;
  if (!kept_) {
    session_mark_.probe("target", *target_, target_endpoint(cfg_));
    std::optional<bool> lock;
    int version = -1;
    {
      pg::Pipeline p(*target_);
      state::RunLock::try_once(p, key, lock,
                               [this](std::vector<pg::Param>& params) { return session_mark_.in_session(params); });
      p.add(stage::leftovers_sql(), [&](pg::Result& r) { leftovers = leftover_names(r); });
      p.add(state::version_sql(), [&](pg::Result& r) { version = state::version_from(r); });
      try {
        p.run();
      } catch (const pg::Error& e) {
        if (e.sqlstate() != "42P01") throw;  // undefined_table: no metadata yet
      }
    }
    if (!lock) session_mark_.refuse("target", *target_);
    bool locked = *lock;
    if (!locked && !state::RunLock::acquire(*target_, key, options_.lock_wait_seconds)) {
      int pid = state::RunLock::holder(*target_, key);
      throw LockBusy("another stagesync run is in progress on " + target_->describe() +
                     (pid ? " (server process " + std::to_string(pid) + ")" : std::string()) +
                     "; try again later or pass --wait SECONDS");
    }
    if (!locked || version != state::kMetadataVersion) {
      // First run on this target, an upgrade, or the lock came after a wait: the careful path.
      state::ensure_metadata(*target_);
      if (!locked) {  // read before the lock was ours: read again
        leftovers = leftover_names(target_->exec(stage::leftovers_sql()));
      }
    }
    holds_lock_ = true;
  }
  // Second round trip: clean up, record the run, and read what staging needs.
  run_id_ = state::new_run_id();
  rejects_ = stage::rejects_table(run_id_);
  std::string tables;
  for (size_t i : plan_.selected()) tables += (tables.empty() ? "" : "\n") + plan_.tables[i].target_name;
  int64_t abandoned = 0;
  pg::Pipeline p(*target_);
  // A kept plan: first, whether the target's tables are still what it was
  // resolved from (the same catalog reads, as one digest). When not, the rest
  // of this round trip has recorded the run; it is marked failed below and
  // nothing is staged or written.
  bool catalog_changed = false;
  if (check_catalog_) {
    p.add(plan::target_catalog_sql(),
          std::vector<pg::Param>{catalog::table_names_param(plan::target_table_names(cfg_))},
          [&](pg::Result& r) { catalog_changed = r.text(0, 0) != target_catalog_; });
  }
  for (const auto& name : leftovers) p.add("DROP TABLE IF EXISTS " + name);
  p.add(
      "UPDATE stagesync.runs SET status = 'abandoned', finished_at = clock_timestamp(), "
      "error = coalesce(error, 'the run ended without finishing (killed, crashed or disconnected)') "
      "WHERE status = 'running'",
      [&](pg::Result& r) { abandoned = r.affected(); });
  p.add(
      "INSERT INTO stagesync.runs (run_id, command, mode, strategy, status, host, os_user, tables, stagesync_version) "
      "VALUES ($1, $2, $3, $4, 'running', $5, $6, pg_catalog.string_to_array($7, E'\\n'), $8)",
      std::vector<pg::Param>{run_id_, command, mode, strategy, hostname(), os_user(), tables, std::string("0.1.0")});
  stage::create_rejects_table(*target_, run_id_);  // deferred: joins this batch
  previous_.clear();
  p.add("SELECT table_name, coalesce(watermark::text, ''), coalesce(last_run_id, '') FROM stagesync.table_state",
        [&](pg::Result& st) {
          for (int r = 0; r < st.rows(); ++r) previous_[st.text(r, 0)] = {st.text(r, 1), st.text(r, 2)};
        });
  tables_.clear();
  tables_.resize(plan_.tables.size());
  source_->before_run(p, mode == "incremental");
  if (mode == "incremental") {
    for (size_t i : plan_.selected()) {
      if (!plan_.tables[i].keyed()) continue;
      p.add(collision_freed_sql(i), std::vector<pg::Param>{plan_.tables[i].target_name},
            [this, i](pg::Result& r) { tables_[i].collision_freed = r.boolean(0, 0); });
    }
  }
  p.run();
  if (catalog_changed) {
    std::string why = "the target's tables changed since the plan was resolved (a schema change between two batches)";
    fail(why);
    throw PlanChanged(why + ": nothing was written; the plan is resolved again");
  }
  if (!leftovers.empty()) {
    out_.warning("dropped " + std::to_string(leftovers.size()) + " staging table(s) left by an interrupted run");
  }
  if (abandoned) out_.warning(std::to_string(abandoned) + " earlier run(s) had been interrupted; marked abandoned");
  return run_id_;
}

void Session::begin() {
  // BEGIN travels with the transaction's first statements.
  target_->defer("BEGIN");
  regime_ = Regime::ServerDefault;
}

void Session::planner_regime(pg::Pipeline& p, size_t index) {
  const source::TableRun& t = tables_.at(index);
  bool few = t.sql && t.sql->incremental() && t.rows_read + t.deletions <= kSmallStagedRows;
  Regime wanted = few ? Regime::FewRows : Regime::ManyRows;
  if (std::exchange(regime_, wanted) == wanted) return;
  if (few) {
    p.add("SET LOCAL enable_nestloop TO DEFAULT");
    p.add("SET LOCAL random_page_cost = 1.1");
  } else {
    p.add("SET LOCAL enable_nestloop = off");
    p.add("SET LOCAL random_page_cost TO DEFAULT");
  }
}

std::string Session::application_name() const { return target_endpoint(cfg_).application_name; }

void Session::reconnect_target() {
  target_.reset();
  holds_lock_ = false;  // the lock went with the old session
  target_ = connect_side("target", target_endpoint(cfg_));
  configure_target();
}

void Session::stage_selected(bool incremental, apply::Strategy strategy) {
  size_t n = plan_.tables.size();
  // A fresh record per table; begin_run()'s collision checks are kept.
  std::vector<source::TableRun> fresh(n);
  for (size_t i = 0; i < n && i < tables_.size(); ++i) fresh[i].collision_freed = tables_[i].collision_freed;
  tables_ = std::move(fresh);
  staged_ptrs_.assign(n, nullptr);
  for (size_t i : plan_.selected()) {
    source::TableRun& r = tables_[i];
    r.staging = std::make_unique<stage::StagingTable>(*target_, run_id_, i, plan_.tables[i]);
    created_.push_back(r.staging->qualified());  // dropped by drop_staging() even if the load fails
    r.sql = std::make_unique<apply::TableSql>(plan_.tables[i], r.staging->qualified());
    staged_ptrs_[i] = r.sql.get();
  }
  source::StageRun run{cfg_, plan_, tables_, *target_, run_id_, rejects_, created_, previous_, incremental, strategy,
                       out_};
  source_->stage(run);
}

void Session::committed() noexcept { source_->committed(run_id_); }

std::string Session::collision_freed_sql(size_t index) const {
  const plan::TablePlan& t = plan_.tables.at(index);
  apply::TableSql sql(t, "");
  std::vector<std::string> same;
  for (const auto& k : t.key) same.push_back("t." + pg::ident(k) + " = " + sql.key_from_json("x.row_key", k));
  // Keys currently set aside (stagesync.set_aside, decision 0016) because a
  // row the sync does not own held them (column_name IS NULL), whose holder
  // is gone: their rows may be inserted now. $1: the table's target name.
  return "SELECT EXISTS (SELECT 1 FROM stagesync.set_aside x WHERE x.table_name = $1 AND x.column_name IS NULL AND "
         "x.row_key LIKE '{%' AND NOT EXISTS (SELECT 1 FROM " +
         t.target.qualified_name() + " t WHERE " + pg::join(same, " AND ") + "))";
}

std::string Session::watermark_json(size_t index) const {
  return delta::to_json(tables_.at(index).watermark, delta::to_string(tables_.at(index).method.method));
}

std::vector<const plan::TablePlan*> Session::plans() const {
  std::vector<const plan::TablePlan*> out;
  for (const auto& t : plan_.tables) out.push_back(&t);
  return out;
}

void Session::drop_staging_after(pg::Pipeline& batch) {
  for (const auto& name : created_) batch.add_best_effort("DROP TABLE IF EXISTS " + name);
  batch.add_best_effort("DROP TABLE IF EXISTS " + rejects_);
  batch.add_best_effort("DROP TABLE IF EXISTS " + stage::released_table(run_id_));
  state::prune_history_after(batch, cfg_.history.keep_days);  // last: a failure skips what follows it
}

void Session::staging_dropped() {
  created_.clear();
  rejects_dropped_ = true;
}

void Session::drop_staging() noexcept {
  if (!target_ || run_id_.empty() || (rejects_dropped_ && created_.empty())) return;
  target_->take_deferred();  // a failed run's queued statements are moot
  auto drop = [&] {
    std::vector<std::string> names = created_;
    names.push_back(rejects_);
    names.push_back(stage::released_table(run_id_));
    stage::drop_work_tables(*target_, names);
  };
  try {
    try {
      drop();
    } catch (const pg::Error& e) {
      if (!e.is_connection_loss()) throw;
      // The connection dropped after the work was done: these tables are this
      // run's own, so a new session may drop them without the run lock.
      reconnect_target();
      drop();
    }
  } catch (const std::exception&) {
    // Left for the next run (stage::leftovers_sql()).
  }
}

void Session::fail(const std::string& error) noexcept {
  if (!target_ || run_id_.empty()) return;
  if (!target_->is_alive()) {
    drop_staging();  // reconnects; the run record is marked abandoned by the next run
    return;
  }
  try {
    target_->take_deferred();  // queued for a transaction that failed
    target_->exec("ROLLBACK");
    target_->exec(
        "UPDATE stagesync.runs SET status = 'failed', finished_at = clock_timestamp(), error = $2 "
        "WHERE run_id = $1 AND status = 'running'",
        std::vector<pg::Param>{run_id_, error.substr(0, 2000)});
  } catch (const std::exception&) {
    // The next run marks it abandoned.
  }
  drop_staging();
}

}  // namespace stagesync::run
