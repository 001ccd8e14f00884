#include "run/session.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <random>

#include "delta/lookup_drift.h"
#include "pg/pipeline.h"
#include "run/pooler_check.h"
#include "run/run_errors.h"
#include "stage/source_query.h"
#include "state/metadata.h"
#include "state/run_lock.h"

namespace stagesync::run {
namespace {

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

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

std::string scope_key(const config::Config& cfg) {
  std::string key;
  for (const auto& [col, value] : cfg.scope.equals) key += col + "=" + value + ";";
  return key;
}

Session::Session(const config::Config& cfg, const SessionOptions& options, report::Reporter& out)
    : cfg_(cfg), options_(options), out_(out) {}

void Session::open() {
  if (!cfg_.source.sqlite.empty()) {
    throw CheckFailed({"source: SQLite sources are not supported by this version yet; use a PostgreSQL source url"});
  }
  source_ = connect_side("source", source_endpoint(cfg_));
  // The target's session check is folded into the run's round trips (begin_run()).
  target_ = connect_side("target", target_endpoint(cfg_), false);
  session_mark_.mark(*target_);
  source_->defer("SET statement_timeout = 0");
  if (!cfg_.source.timezone.empty()) {
    source_->defer("SELECT pg_catalog.set_config('TimeZone', " + source_->literal(cfg_.source.timezone) + ", false)");
  }
  configure_target();
  plan::Resolution r = plan::resolve(cfg_, *source_, *target_, options_.tables);
  if (!r.problems.empty()) throw CheckFailed(std::move(r.problems));
  for (const auto& n : r.run_notes) out_.info(n);
  for (const auto& w : r.warnings) out_.warning(w);
  plan_ = std::move(r.plan);
  if (plan_.selected().empty()) throw CheckFailed({"the configuration lists no tables to sync"});
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

namespace {

}  // namespace

std::string Session::begin_run(const std::string& command, const std::string& mode, const std::string& strategy) {
  std::string key = scope_key(cfg_);
  // First round trip: the lock, what a crashed run left, and the metadata
  // version (last: it fails when the schema does not exist yet, which the
  // slow path below handles; a session advisory lock outlives that rollback).
  // A transaction pooler is refused before the lock is tried: the probe
  // connection first, then the lock only in the session marked at connect.
  session_mark_.probe("target", *target_, target_endpoint(cfg_));
  std::optional<bool> lock;
  int version = -1;
  std::vector<std::string> leftovers;
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
  // Second round trip: clean up, record the run, and read what staging needs.
  run_id_ = state::new_run_id();
  rejects_ = stage::rejects_table(run_id_);
  std::string tables;
  for (size_t i : plan_.selected()) tables += (tables.empty() ? "" : "\n") + plan_.tables[i].target_name;
  int64_t abandoned = 0;
  pg::Pipeline p(*target_);
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
  target_text_hash_.clear();
  tables_.clear();
  tables_.resize(plan_.tables.size());
  if (mode == "incremental") {
    p.add(delta::text_hash_probe(), [&](pg::Result& r) { target_text_hash_ = r.text(0, 0); });
    for (size_t i : plan_.selected()) {
      if (!plan_.tables[i].keyed()) continue;
      p.add(collision_freed_sql(i), std::vector<pg::Param>{plan_.tables[i].target_name},
            [this, i](pg::Result& r) { tables_[i].collision_freed = r.boolean(0, 0); });
    }
  }
  p.run();
  if (!leftovers.empty()) {
    out_.warning("dropped " + std::to_string(leftovers.size()) + " staging table(s) left by an interrupted run");
  }
  if (abandoned) out_.warning(std::to_string(abandoned) + " earlier run(s) had been interrupted; marked abandoned");
  return run_id_;
}

void Session::begin() {
  // BEGIN and its settings travel with the transaction's first statements.
  target_->defer("BEGIN");
  // Incremental runs that staged few rows want the opposite: index lookups
  // into the large target tables, not a hash of each of them.
  int64_t staged = 0;
  bool all_incremental = true;
  for (size_t i : plan_.selected()) {
    staged += tables_.at(i).rows_read;
    all_incremental = all_incremental && tables_.at(i).sql && tables_.at(i).sql->incremental();
  }
  if (!all_incremental || staged > kSmallStagedRows) {
    target_->defer("SET LOCAL enable_nestloop = off");
  } else {
    // Each staged row is one index lookup: the default cost of a random page
    // (4, a disk seek) makes the planner hash whole target tables instead,
    // several times slower for a few thousand rows of tables that are cached.
    target_->defer("SET LOCAL random_page_cost = 1.1");
  }
}

std::string Session::application_name() const { return target_endpoint(cfg_).application_name; }

void Session::reconnect_target() {
  target_.reset();
  target_ = connect_side("target", target_endpoint(cfg_));
  configure_target();
}

void Session::stage_selected(bool incremental, apply::Strategy strategy) {
  size_t n = plan_.tables.size();
  // A fresh record per table; begin_run()'s collision checks are kept.
  std::vector<TableRun> fresh(n);
  for (size_t i = 0; i < n && i < tables_.size(); ++i) fresh[i].collision_freed = tables_[i].collision_freed;
  tables_ = std::move(fresh);
  staged_ptrs_.assign(n, nullptr);
  std::string identity = delta::source_identity(*source_);
  bool hashes_match = !incremental || source_->exec(delta::text_hash_probe()).text(0, 0) == target_text_hash_;
  // One snapshot for every table: parents and children are read as of the same instant.
  source_->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  snapshot_ = delta::current_snapshot(*source_, identity);
  for (size_t i : plan_.selected()) {
    TableRun& r = tables_[i];
    r.staging = std::make_unique<stage::StagingTable>(*target_, run_id_, i, plan_.tables[i]);
    created_.push_back(r.staging->qualified());  // dropped by drop_staging() even if the load fails
    r.sql = std::make_unique<apply::TableSql>(plan_.tables[i], r.staging->qualified());
    staged_ptrs_[i] = r.sql.get();
  }
  auto done = [this](size_t i) {
    const TableRun& r = tables_[i];
    out_.progress(report::Progress{plan_.tables[i].target_name, r.rows_read, r.estimate, r.stage_seconds, true});
  };
  if (!incremental) {
    // A full read loads every table: their COPYs go in one chained message
    // (each table after the first starts in the round trip that ends the last).
    std::vector<stage::StagingTable*> order;
    for (size_t i : plan_.selected()) order.push_back(tables_[i].staging.get());
    stage::StagingChain chain(*target_, order);
    for (size_t i : plan_.selected()) {
      TableRun& r = tables_[i];
      auto start = std::chrono::steady_clock::now();
      choose(i, false, strategy, hashes_match);
      auto progress = [&](int64_t k) {
        out_.progress(report::Progress{plan_.tables[i].target_name, k, r.estimate, since(start), false});
      };
      r.rows_read = r.source_rows = r.watermark.rows = chain.load(*r.staging, *source_, progress);
      r.stage_seconds = since(start);
      done(i);
    }
    source_->exec("COMMIT");
    return;
  }

  // Incremental, in phases whose target round trips do not grow with the
  // number of tables: what each table reads first (its change window, or all
  // of it) in one chained COPY, then every table that may have changed
  // reconciled together (delta::ReconcileBatch).
  delta::TextSettings settings = delta::read_text_settings(*source_);
  stage::CopyChain reads;
  std::vector<size_t> reconciled;
  std::vector<std::string> window(n);  // the SELECT each cursor table's first read was (empty: none)
  for (size_t i : plan_.selected()) {
    TableRun& r = tables_[i];
    const plan::TablePlan& t = plan_.tables[i];
    auto start = std::chrono::steady_clock::now();
    int64_t window_rows = choose(i, true, strategy, hashes_match);
    if (r.unchanged) {
      r.stage_seconds = since(start);
      done(i);
      continue;
    }
    delta::Method m = r.method.method;
    std::string where = m == delta::Method::Cursor ? r.method.window : m == delta::Method::Fingerprint ? "false" : "";
    // A read known to be empty is not sent: fingerprints stage nothing first,
    // and a cursor window the counting scan found empty.
    bool empty = where == "false" || (m == delta::Method::Cursor && window_rows == 0);
    if (!empty) {
      if (m == delta::Method::Cursor) window[i] = stage::source_select(t, *source_, where);
      auto loaded = [&r, m](int64_t rows, const std::vector<int64_t>&) {
        r.rows_read = r.source_rows = rows;
        if (m == delta::Method::Full) r.watermark.rows = rows;
      };
      reads.add(stage::CopyChain::Copy{
          stage::source_copy(t, *source_, where), r.staging->copy_in(), {r.staging->analyze_sql()}, loaded});
    }
    if (m != delta::Method::Full) reconciled.push_back(i);
    r.stage_seconds = since(start);
  }
  auto start = std::chrono::steady_clock::now();
  reads.run(*source_, *target_);
  if (!reconciled.empty()) {
    delta::ReconcileBatch batch(*source_, *target_, settings, created_);
    for (size_t i : reconciled) {
      delta::ReconcileInput in = reconcile_input(i);
      if (!window[i].empty()) in.staged.push_back(window[i]);
      // The deletions table is named at once: children's reconciliation reads it.
      tables_[i].sql->set_deletions(batch.add(std::move(in)).result().deletions);
    }
    batch.run();
    for (size_t i : reconciled) {
      TableRun& r = tables_[i];
      const delta::Reconciled& rec = batch.result(i);
      r.source_rows = rec.source_rows;
      r.target_owned = rec.target_owned;
      r.deletions = rec.deletion_count;
      // carried_rejects: written by the batch's deferred count (ReconcileInput::rejects_carried).
      r.rows_read += rec.rows_fetched;
      r.staging->analyze();
    }
  }
  // The shared phases' time, spread over the tables that took part in them.
  size_t read = 0;
  for (size_t i : plan_.selected()) read += tables_[i].unchanged ? 0 : 1;
  double shared = read ? since(start) / static_cast<double>(read) : 0;
  for (size_t i : plan_.selected()) {
    if (tables_[i].unchanged) continue;
    tables_[i].stage_seconds += shared;
    done(i);
  }
  source_->exec("COMMIT");
}

int64_t Session::choose(size_t i, bool incremental, apply::Strategy strategy, bool hashes_match) {
  TableRun& r = tables_[i];
  const plan::TablePlan& t = plan_.tables[i];
  pg::Result rel = source_->exec(
      "SELECT greatest(reltuples, 0)::bigint, relkind::text FROM pg_catalog.pg_class WHERE oid = "
      "pg_catalog.to_regclass($1)",
      std::vector<pg::Param>{t.source.qualified_name()});
  r.estimate = rel.rows() && rel.int64(0, 0) > 0 ? rel.int64(0, 0) : -1;
  delta::TableFacts facts;
  facts.incremental_requested = incremental;
  facts.strategy = strategy;
  facts.row_versions = rel.rows() && std::string("rpm").find(rel.text(0, 1)) != std::string::npos;
  facts.fingerprints_match = hashes_match;
  facts.now = snapshot_;
  std::map<std::string, int64_t> counted;  // whole source tables counted earlier in this snapshot
  for (size_t j : plan_.selected()) {
    if (j == i) break;
    if (plan_.tables[j].scope.empty() && tables_[j].watermark.rows >= 0) {
      counted[plan_.tables[j].source.qualified_name()] = tables_[j].watermark.rows;
    }
  }
  facts.now.lookup_rows = delta::lookup_rows(t, *source_, counted);
  r.watermark = facts.now;
  auto prev = previous_.find(t.target_name);
  if (prev != previous_.end()) facts.previous = delta::from_json(prev->second.first);
  if (incremental && facts.previous && !t.lookups.empty()) {
    facts.lookup_change = delta::lookup_changes(*source_, *facts.previous, facts.now);
  }
  r.method = delta::choose_method(t, facts);
  if (facts.previous) r.previous_rejects = facts.previous->rejects_run;
  if (r.previous_rejects.empty() && prev != previous_.end()) r.previous_rejects = prev->second.second;
  r.watermark.rejects_run = run_id_;

  // The table's in-scope source rows, and how many are in the change window.
  std::string why;
  std::optional<std::string> window;
  if (incremental && strategy == apply::Strategy::Merge && facts.row_versions && facts.previous &&
      t.config->incremental.method != "fingerprint" && facts.lookup_change.empty()) {
    window = delta::changed_since(*facts.previous, facts.now, why);
  }
  if (!window && r.method.method == delta::Method::Full) return -1;
  pg::Result c = source_->exec(stage::source_count(t, *source_, window ? *window : "false"));
  r.watermark.rows = c.int64(0, 0);
  if (!window) return -1;
  int64_t window_rows = c.int64(0, 1);
  if (window_rows == 0 && facts.previous->rows == r.watermark.rows && !references_changed(t) &&
      (!t.keyed() || !r.collision_freed)) {
    mark_unchanged(i);
  }
  // The rows the method's window reads, when it is the counted one.
  return r.method.method == delta::Method::Cursor && r.method.window == *window ? window_rows : -1;
}

void Session::mark_unchanged(size_t i) {
  const plan::TablePlan& t = plan_.tables[i];
  TableRun& r = tables_[i];
  if (t.keyed()) {
    // An empty deletion list: for children's references, every parent row survives.
    created_.push_back(delta::deletions_table(*target_, *r.sql, run_id_, i));
    r.sql->set_deletions(created_.back());
  }
  r.unchanged = true;
  r.method =
      delta::MethodChoice{delta::Method::Cursor,
                          "cursor: nothing changed since the last run (no new row version, same row count)", "", false};
  r.source_rows = r.target_owned = r.watermark.rows;
  r.watermark.rejects_run = r.previous_rejects;
}

delta::ReconcileInput Session::reconcile_input(size_t i) {
  const plan::TablePlan& t = plan_.tables[i];
  TableRun& r = tables_[i];
  const delta::MethodChoice& m = r.method;
  delta::ReconcileInput in;
  in.method = m.method;
  in.table = r.sql.get();
  in.staging = r.staging.get();
  in.run_id = run_id_;
  in.index = i;
  if (m.method == delta::Method::Cursor) {
    in.window = m.window;
    in.previous_run_id = r.previous_rejects;
  }
  in.estimated_rows = std::max<int64_t>(r.estimate, 0);
  in.run_rejects = rejects_;
  in.rejects_carried = &r.carried_rejects;  // a stable element: tables_ is sized before staging
  for (const auto& ref : t.references) {
    const TableRun& parent = tables_.at(ref.parent);
    if (!parent.sql) continue;
    if (!parent.sql->incremental()) {
      in.retry_orphans = true;  // every parent row was read: no telling which arrived
      continue;
    }
    // Children of every staged parent row are read (an orphan passes when
    // its parent arrives; a parent row read again as a child of a deleted
    // row may be set aside, and its children with it); children of parents
    // this run deletes are judged again (on_orphan applies as in a full run).
    if (!parent.unchanged) in.children_of.push_back({ref.parent, ref.parent_columns, ref.columns});
    // The parent rows this run deletes are still in the target table now:
    // their referenced values are read there (they need not be the parent's key).
    std::vector<std::string> keys;
    for (const auto& k : t.key) keys.push_back("c." + pg::ident(k) + "::" + t.column(k)->stage_type);
    in.also_fetch.push_back("SELECT " + pg::join(keys, ", ") + " FROM " + t.target.qualified_name() + " c WHERE (" +
                            pg::column_list(ref.columns, "c") + ") IN (SELECT " +
                            pg::column_list(ref.parent_columns, "p") + " FROM " +
                            plan_.tables[ref.parent].target.qualified_name() + " p WHERE EXISTS (SELECT 1 FROM " +
                            parent.sql->deletions() + " d WHERE " + parent.sql->same_key("d", "p") + "))");
  }
  if (m.lookup_drift) {
    for (auto& select : delta::lookup_drift(t, *target_, run_id_, i, created_, in.copies))
      in.also_fetch.push_back(select);
  }
  return in;
}

bool Session::references_changed(const plan::TablePlan& t) const {
  for (const auto& ref : t.references) {
    // A parent may have arrived, or gone, when its table may have had new,
    // changed or deleted rows in this run (not proved unchanged; a full read
    // cannot tell which: always). Decided before any table is reconciled, so
    // every table's reconciliation can share the same round trips.
    const TableRun& parent = tables_.at(ref.parent);
    if (parent.sql && !parent.unchanged) return true;
  }
  return false;
}

std::string Session::collision_freed_sql(size_t index) const {
  const plan::TablePlan& t = plan_.tables.at(index);
  apply::TableSql sql(t, "");
  std::vector<std::string> same;
  for (const auto& k : t.key) same.push_back("t." + pg::ident(k) + " = " + sql.key_from_json("x.row_key", k));
  // Keys the table's current rejects run set aside because a row the sync
  // does not own held them (column_name IS NULL), whose holder is gone: their
  // rows may be inserted now. $1: the table's target name. The rejects run is
  // the one the table's watermark names, else its last run.
  return "SELECT EXISTS (SELECT 1 FROM stagesync.rejects x WHERE x.run_id = (SELECT coalesce(nullif(st.watermark ->> "
         "'rejects_run', ''), st.last_run_id) FROM stagesync.table_state st WHERE st.table_name = $1) AND "
         "x.table_name = $1 AND x.column_name IS NULL AND x.row_key LIKE '{%' AND NOT EXISTS (SELECT 1 FROM " +
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
