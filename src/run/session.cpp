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

// "YYYYMMDDTHHMMSS_xxxxxx" (UTC, then 6 random hex digits): sorts by start time.
std::string new_run_id() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%06x", static_cast<unsigned>(rd() & 0xFFFFFF));
  return std::string(stamp) + "_" + suffix;
}

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
  run_id_ = new_run_id();
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
  collisions_freed_.assign(plan_.tables.size(), false);
  if (mode == "incremental") {
    p.add(delta::text_hash_probe(), [&](pg::Result& r) { target_text_hash_ = r.text(0, 0); });
    for (size_t i : plan_.selected()) {
      if (!plan_.tables[i].keyed()) continue;
      p.add(collision_freed_sql(i), std::vector<pg::Param>{plan_.tables[i].target_name},
            [this, i](pg::Result& r) { collisions_freed_[i] = r.boolean(0, 0); });
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
    staged += rows_read_.at(i);
    all_incremental = all_incremental && staged_.at(i) && staged_.at(i)->incremental();
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
  staged_.clear();
  staged_.resize(n);
  staged_ptrs_.assign(n, nullptr);
  rows_read_.assign(n, 0);
  source_rows_.assign(n, 0);
  stage_seconds_.assign(n, 0);
  methods_.assign(n, delta::MethodChoice{});
  watermarks_.assign(n, delta::Watermark{});
  target_owned_.assign(n, -1);
  carried_rejects_.assign(n, 0);
  deletions_.assign(n, 0);
  unchanged_.assign(n, false);
  // Each table's watermark and last run, as its last successful run left them (read by begin_run()).
  const auto& previous = previous_;
  std::string identity = delta::source_identity(*source_);
  bool hashes_match = !incremental || source_->exec(delta::text_hash_probe()).text(0, 0) == target_text_hash_;
  // One snapshot for every table: parents and children are read as of the same instant.
  source_->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  snapshot_ = delta::current_snapshot(*source_, identity);
  delta::TextSettings settings;
  if (incremental) settings = delta::read_text_settings(*source_);
  // A full read loads every table: their COPYs go in one chained message
  // (each table after the first starts in the round trip that ends the last).
  std::vector<std::unique_ptr<stage::StagingTable>> tables(n);
  std::unique_ptr<stage::StagingChain> chain;
  if (!incremental) {
    std::vector<stage::StagingTable*> order;
    for (size_t i : plan_.selected()) {
      tables[i] = std::make_unique<stage::StagingTable>(*target_, run_id_, i, plan_.tables[i]);
      created_.push_back(tables[i]->qualified());  // dropped by drop_staging() even if the load fails
      order.push_back(tables[i].get());
    }
    chain = std::make_unique<stage::StagingChain>(*target_, order);
  }
  for (size_t i : plan_.selected()) {
    const plan::TablePlan& t = plan_.tables[i];
    pg::Result rel = source_->exec(
        "SELECT greatest(reltuples, 0)::bigint, relkind::text FROM pg_catalog.pg_class WHERE oid = "
        "pg_catalog.to_regclass($1)",
        std::vector<pg::Param>{t.source.qualified_name()});
    int64_t estimate = rel.rows() && rel.int64(0, 0) > 0 ? rel.int64(0, 0) : -1;
    delta::TableFacts facts;
    facts.incremental_requested = incremental;
    facts.strategy = strategy;
    facts.row_versions = rel.rows() && std::string("rpm").find(rel.text(0, 1)) != std::string::npos;
    facts.fingerprints_match = hashes_match;
    facts.now = snapshot_;
    std::map<std::string, int64_t> counted;  // whole source tables counted earlier in this snapshot
    for (size_t j : plan_.selected()) {
      if (j == i) break;
      if (plan_.tables[j].scope.empty() && watermarks_[j].rows >= 0) {
        counted[plan_.tables[j].source.qualified_name()] = watermarks_[j].rows;
      }
    }
    facts.now.lookup_rows = delta::lookup_rows(t, *source_, counted);
    watermarks_[i] = facts.now;
    auto prev = previous.find(t.target_name);
    if (prev != previous.end()) facts.previous = delta::from_json(prev->second.first);
    if (incremental && facts.previous && !t.lookups.empty()) {
      facts.lookup_change = delta::lookup_changes(*source_, *facts.previous, facts.now);
    }
    methods_[i] = delta::choose_method(t, facts);
    delta::MethodChoice& m = methods_[i];
    std::string previous_rejects;  // the run whose rejects of this table are current
    if (facts.previous) previous_rejects = facts.previous->rejects_run;
    if (previous_rejects.empty() && prev != previous.end()) previous_rejects = prev->second.second;
    watermarks_[i].rejects_run = run_id_;

    auto start = std::chrono::steady_clock::now();
    if (!tables[i]) {
      tables[i] = std::make_unique<stage::StagingTable>(*target_, run_id_, i, t);
      created_.push_back(tables[i]->qualified());  // dropped by drop_staging() even if the load fails
    }
    stage::StagingTable& table = *tables[i];
    staged_[i] = std::make_unique<apply::TableSql>(t, table.qualified());
    // The table's in-scope source rows, and how many are in the change window.
    std::string why;
    std::optional<std::string> window;
    if (incremental && strategy == apply::Strategy::Merge && facts.row_versions && facts.previous &&
        t.config->incremental.method != "fingerprint" && facts.lookup_change.empty()) {
      window = delta::changed_since(*facts.previous, facts.now, why);
    }
    int64_t window_rows = -1;  // rows in the change window (-1: not counted)
    if (window || m.method != delta::Method::Full) {
      pg::Result c = source_->exec(stage::source_count(t, *source_, window ? *window : "false"));
      watermarks_[i].rows = c.int64(0, 0);
      if (window) window_rows = c.int64(0, 1);
      if (window && c.int64(0, 1) == 0 && facts.previous->rows == watermarks_[i].rows && !references_changed(t) &&
          (!t.keyed() || !collisions_freed_.at(i))) {
        mark_unchanged(i, previous_rejects);
        stage_seconds_[i] = since(start);
        out_.progress(report::Progress{t.target_name, 0, estimate, stage_seconds_[i], true});
        staged_ptrs_[i] = staged_[i].get();
        continue;
      }
    }
    std::string where = m.method == delta::Method::Cursor        ? m.window
                        : m.method == delta::Method::Fingerprint ? "false"
                                                                 : "";
    auto progress = [&](int64_t k) {
      out_.progress(report::Progress{t.target_name, k, estimate, since(start), false});
    };
    // A read known to be empty is not sent (a COPY costs two round trips): fingerprints stage nothing
    // first, and a cursor window the counting scan found empty.
    bool empty =
        where == "false" || (m.method == delta::Method::Cursor && window && m.window == *window && window_rows == 0);
    int64_t rows = chain ? chain->load(table, *source_, progress) : empty ? 0 : table.load(*source_, progress, where);
    source_rows_[i] = rows;
    if (m.method == delta::Method::Full) watermarks_[i].rows = rows;
    if (m.method != delta::Method::Full) {
      rows += stage_changes(i, table, settings, previous_rejects, estimate);
      table.analyze();
    }
    rows_read_[i] = rows;
    stage_seconds_[i] = since(start);
    out_.progress(report::Progress{t.target_name, rows, estimate, stage_seconds_[i], true});
    staged_ptrs_[i] = staged_[i].get();
  }
  source_->exec("COMMIT");
}

void Session::mark_unchanged(size_t i, const std::string& previous_rejects) {
  const plan::TablePlan& t = plan_.tables[i];
  if (t.keyed()) {
    // An empty deletion list: for children's references, every parent row survives.
    created_.push_back(delta::deletions_table(*target_, *staged_[i], run_id_, i));
    staged_[i]->set_deletions(created_.back());
  }
  unchanged_[i] = true;
  methods_[i] =
      delta::MethodChoice{delta::Method::Cursor,
                          "cursor: nothing changed since the last run (no new row version, same row count)", "", false};
  source_rows_[i] = target_owned_[i] = watermarks_[i].rows;
  watermarks_[i].rejects_run = previous_rejects;
}

int64_t Session::stage_changes(size_t i, stage::StagingTable& table, const delta::TextSettings& settings,
                               const std::string& previous_rejects, int64_t estimate) {
  const plan::TablePlan& t = plan_.tables[i];
  const delta::MethodChoice& m = methods_[i];
  delta::ReconcileInput in;
  in.method = m.method;
  in.table = staged_[i].get();
  in.staging = &table;
  in.run_id = run_id_;
  in.index = i;
  if (m.method == delta::Method::Cursor) {
    in.window = m.window;
    in.previous_run_id = previous_rejects;
  }
  in.estimated_rows = std::max<int64_t>(estimate, 0);
  in.settings = settings;
  in.run_rejects = rejects_;
  in.rejects_carried = &carried_rejects_[i];  // a stable element: the vector is sized before staging
  for (const auto& ref : t.references) {
    const apply::TableSql* parent = staged_.at(ref.parent).get();
    if (!parent) continue;
    if (!parent->incremental()) {
      in.retry_orphans = true;  // every parent row was read: no telling which arrived
      continue;
    }
    // Children of every staged parent row are read (an orphan passes when
    // its parent arrives; a parent row read again as a child of a deleted
    // row may be set aside, and its children with it); children of parents
    // this run deletes are judged again (on_orphan applies as in a full run).
    if (rows_read_.at(ref.parent) > 0) in.children_of.push_back({parent->staging(), ref.parent_columns, ref.columns});
    // The parent rows this run deletes are still in the target table now:
    // their referenced values are read there (they need not be the parent's key).
    if (parent->deletions().empty()) continue;
    std::vector<std::string> keys;
    for (const auto& k : t.key) keys.push_back("c." + pg::ident(k) + "::" + t.column(k)->stage_type);
    in.also_fetch.push_back("SELECT " + pg::join(keys, ", ") + " FROM " + t.target.qualified_name() + " c WHERE (" +
                            pg::column_list(ref.columns, "c") + ") IN (SELECT " +
                            pg::column_list(ref.parent_columns, "p") + " FROM " +
                            plan_.tables[ref.parent].target.qualified_name() + " p WHERE EXISTS (SELECT 1 FROM " +
                            parent->deletions() + " d WHERE " + parent->same_key("d", "p") + "))");
  }
  if (m.lookup_drift) {
    for (auto& select : delta::lookup_drift(t, *source_, *target_, run_id_, i, created_))
      in.also_fetch.push_back(select);
  }
  delta::Reconciled rec = delta::reconcile(*source_, *target_, in, created_);
  source_rows_[i] = rec.source_rows;
  target_owned_[i] = rec.target_owned;
  deletions_[i] = rec.deletion_count;
  // carried_rejects_[i]: written by reconcile()'s deferred count (in.rejects_carried).
  staged_[i]->set_deletions(rec.deletions);
  return rec.rows_fetched;
}

bool Session::references_changed(const plan::TablePlan& t) const {
  for (const auto& ref : t.references) {
    // A parent may have arrived, or gone, when its table had new, changed or
    // deleted rows in this run (a full read cannot tell which: always).
    if (!staged_.at(ref.parent)) continue;
    if (methods_.at(ref.parent).method == delta::Method::Full) return true;
    if (rows_read_.at(ref.parent) > 0 || deletions_.at(ref.parent) > 0) return true;
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
  return delta::to_json(watermarks_.at(index), delta::to_string(methods_.at(index).method));
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
