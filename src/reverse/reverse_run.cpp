#include "reverse/reverse_run.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

#include "apply/table_counts.h"
#include "catalog/table_schema.h"
#include "delta/watermark.h"
#include "pg/interrupt.h"
#include "pg/pipeline.h"
#include "reverse/crash_point.h"
#include "reverse/desktop_sql.h"
#include "reverse/pending.h"
#include "reverse/reverse_plan.h"
#include "run/backoff.h"
#include "run/pooler_check.h"
#include "run/run_errors.h"
#include "run/session.h"
#include "pg/copy_pipe.h"
#include "state/metadata.h"
#include "state/reverse_book.h"
#include "state/run_lock.h"

namespace stagesync::reverse {
namespace {

// Reverse sync writes into the desktop database; a SQLite source is only ever read (SPEC 1.7).
std::string sqlite_refusal() {
  return "reverse: the source is a SQLite file, which stagesync only reads (never writes); reverse sync needs a "
         "PostgreSQL desktop (remove the 'reverse:' entries or use a source url)";
}

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

pg::Endpoint desktop_endpoint(const config::Config& cfg) {
  pg::Endpoint e = run::source_endpoint(cfg);
  e.application_name = kDesktopApplicationName;
  return e;
}

std::string identity_sql() {
  return "SELECT d.oid::text || '/' || d.datname FROM pg_catalog.pg_database d "
         "WHERE d.datname = pg_catalog.current_database()";
}

// Row versions written by transactions the snapshot of the entry's last promoted run could not see
// (and some it could: reading them again is harmless, the mobile image decides), read from the
// bookkeeping in the same statement; no watermark yet: every row. Versions newer than this run's
// snapshot are invisible anyway, so the upper bound only matters where 32-bit ids wrapped: then the
// window is two intervals. Both bounds are evaluated once per statement (uncorrelated subqueries).
std::string window_sql(const std::string& entry) {
  std::string lo =
      "coalesce((SELECT (w.watermark->>'xmin')::bigint % 4294967296 FROM stagesync.reverse_state w "
      "WHERE w.entry = " +
      pg::text_literal(entry) + "), -1)";
  std::string x = "t.xmin::text::bigint";
  std::string hi = "(SELECT pg_catalog.txid_snapshot_xmax(pg_catalog.txid_current_snapshot()) % 4294967296)";
  return "CASE WHEN " + lo + " <= " + hi + " THEN " + x + " >= " + lo + " ELSE " + x + " >= " + lo + " OR " + x +
         " < " + hi + " END";
}

struct EntryRun {
  const EntryPlan* plan = nullptr;
  std::string window;    // empty: from the recorded watermark (window_sql)
  std::string previous;  // the recorded watermark (JSON), empty when none
  // Rows judged to be written that were not (the desktop application changed them meanwhile): the
  // watermark stays where it was, so the next run judges them again.
  int64_t missed = 0;
  std::string method;  // for the summary: how rows were found
  int64_t to_stage = 0;
  report::TableResult result;
  std::vector<std::string> notes;  // conflicts, collisions, kept deletions
};

void count_into(EntryRun& e, const std::string& action, int64_t n, int64_t conflicts, const std::string& keys) {
  apply::TableCounts& c = e.result.counts;
  std::string id = e.plan->cloud.display_name() + " -> " + e.plan->desktop.display_name();
  if (action == "insert") c.inserted += n;
  if (action == "update" || action == "update-any") c.updated += n;
  if (action == "delete" || action == "delete-any") c.deleted += n;
  if (action == "collision") {
    c.rejected += n;
    c.collisions += n;
    e.notes.push_back(id + ": " + std::to_string(n) +
                      " new mobile row(s) not copied: a desktop row reverse sync "
                      "never wrote has the same key (e.g. " +
                      keys + "); retried every run");
  }
  if (action == "ambiguous") {
    c.rejected += n;
    e.notes.push_back(id + ": " + std::to_string(n) +
                      " conflict(s) left alone: several desktop rows have the key (e.g. " + keys + ")");
  }
  if (action == "keep-deleted") {
    e.notes.push_back(id + ": " + std::to_string(n) +
                      " row(s) deleted on the mobile side kept on the desktop (deletes: " + e.plan->config->deletes +
                      (conflicts ? ", or edited on the desktop" : "") + "; e.g. " + keys + ")");
  }
  if (conflicts && action != "ambiguous") {
    e.notes.push_back(id + ": " + std::to_string(conflicts) +
                      " conflict(s) (copied row edited or deleted on the desktop, "
                      "changed on the mobile side), conflicts: " +
                      e.plan->config->conflicts + " -> " + action + " (e.g. " + keys + ")");
  }
}

class ReverseRun {
 public:
  ReverseRun(const config::Config& cfg, const ReverseOptions& o, report::Reporter& out) : cfg_(cfg), o_(o), out_(out) {}

  report::RunSummary run() {
    try {
      return run_once();
    } catch (const std::exception& e) {
      record_failure(e.what());
      throw;
    }
  }

 private:
  // A failed run leaves a `failed` run record for status (best effort: the target may be unreachable, and
  // a run that failed before it took the lock, or in plan mode, records nothing).
  void record_failure(const std::string& error) noexcept {
    if (o_.plan_only || run_id_.empty() || !target_ || !target_->is_alive()) return;
    try {
      target_->take_deferred();
      target_->exec("ROLLBACK");  // whatever transaction was open (a warning when none)
      pg::Pipeline p(*target_);
      add_run_record(p, "failed");
      p.add(
          "UPDATE stagesync.runs SET error = $2, finished_at = clock_timestamp() WHERE run_id = $1 AND status = "
          "'failed'",
          std::vector<pg::Param>{run_id_, error.substr(0, 2000)});
      p.run();
    } catch (...) {  // best effort: the run's own error is what the user needs
    }
  }

  report::RunSummary run_once() {
    auto start = std::chrono::steady_clock::now();
    summary_.command = o_.plan_only ? "plan" : "reverse";
    summary_.mode = "reverse";
    connect_and_resolve();
    begin_run();
    int64_t total = 0;
    for (auto& e : entries_) total += e.to_stage;
    if (total == 0) {
      finish_unchanged();
    } else {
      stage_on_desktop();
      judge_on_desktop();
      crash_point("judged");
      if (!o_.plan_only) apply_and_commit();
    }
    for (auto& e : entries_) {
      for (const auto& n : e.notes) out_.warning(n);
      out_.table_done(e.result);
      summary_.tables.push_back(e.result);
    }
    summary_.outcome = "succeeded";
    summary_.exit_code = 0;
    summary_.seconds = since(start);
    return summary_;
  }

  // 1: connections, both catalogs, the plan.
  void connect_and_resolve() {
    if (!cfg_.source.sqlite.empty()) throw run::CheckFailed({"source: reverse sync needs a PostgreSQL desktop"});
    if (cfg_.reverse.empty()) throw run::CheckFailed({"the configuration has no 'reverse:' entries"});
    desktop_ = run::connect_side("source", desktop_endpoint(cfg_), false);
    target_ = run::connect_side("target", run::target_endpoint(cfg_), false);
    mark_.mark(*target_);
    desktop_->defer("SET statement_timeout = 0");
    if (!cfg_.source.timezone.empty()) {
      desktop_->defer("SELECT pg_catalog.set_config('TimeZone', " + desktop_->literal(cfg_.source.timezone) +
                      ", false)");
    }
    target_->defer("SET statement_timeout = 0");
    target_->defer("SET lock_timeout = '10s'");
    std::vector<std::string> clouds = cloud_tables(cfg_), desktops = desktop_tables(cfg_);
    catalog::Tables cloud, desktop;
    pg::Pipeline tp(*target_);
    tp.add(catalog::read_tables_sql(), std::vector<pg::Param>{catalog::table_names_param(clouds)},
           [&](pg::Result& r) { cloud = catalog::tables_from(r, clouds); });
    tp.set_async();
    tp.start();  // the two catalogs are read at the same time
    pg::Pipeline dp(*desktop_);
    dp.add(catalog::read_tables_sql(), std::vector<pg::Param>{catalog::table_names_param(desktops)},
           [&](pg::Result& r) { desktop = catalog::tables_from(r, desktops); });
    dp.add(identity_sql(), [&](pg::Result& r) { desktop_identity_ = r.text(0, 0); });
    dp.run();
    tp.finish();
    plan_ = resolve(cfg_, cloud, desktop, o_.tables);
    if (!plan_.problems.empty()) throw run::CheckFailed(plan_.problems);
    for (const auto& e : plan_.entries) {
      EntryRun r;
      r.plan = &e;
      r.result.source = e.desktop.display_name();
      r.result.target = e.cloud.display_name();
      r.result.mode_requested = "reverse";
      r.result.planned = o_.plan_only;
      entries_.push_back(std::move(r));
    }
  }

  // 2-3: lock, metadata and bookkeeping, pending runs, the last watermarks, and (common case) the target
  // snapshot with what each entry has to move: one round trip. Each statement is its own transaction
  // there (the snapshot's REPEATABLE READ one starts with its BEGIN); anything unusual (first run, a
  // pending run, the lock after a wait, an unusable watermark) takes the careful path after it.
  void begin_run() {
    mark_.probe("target", *target_, run::target_endpoint(cfg_));
    std::string key = run::scope_key(cfg_);
    std::optional<bool> lock;
    int version = -1;
    std::vector<Pending> pending;
    std::map<std::string, std::string> states;
    auto reads = [&](pg::Pipeline& p) {
      p.add(state::version_sql(), [&](pg::Result& r) { version = state::version_from(r); });
      p.add(pending_sql(), [&](pg::Result& r) { pending = pending_from(r); });
      p.add("SELECT entry, coalesce(watermark::text, '') FROM stagesync.reverse_state", [&](pg::Result& r) {
        for (int i = 0; i < r.rows(); ++i) states[r.text(i, 0)] = r.text(i, 1);
      });
    };
    bool fast = true;
    {
      pg::Pipeline p(*target_);
      p.set_sync_each();
      state::RunLock::try_once(p, key, lock,
                               [this](std::vector<pg::Param>& params) { return mark_.in_session(params); });
      reads(p);
      add_snapshot_and_counts(p);
      try {
        p.run();
      } catch (const pg::Error& e) {
        if (e.sqlstate() != "42P01") throw;  // undefined_table: no metadata or bookkeeping yet
        fast = false;
      }
    }
    if (!lock) mark_.refuse("target", *target_);
    fast = fast && *lock && version == state::kMetadataVersion && pending.empty() && windows_usable(states);
    if (fast) {
      run_id_ = state::new_run_id();
      summary_.run_id = run_id_;
      return;
    }
    target_->exec("ROLLBACK");  // the snapshot's transaction, if it began (a warning otherwise, ignored)
    if (!*lock && !state::RunLock::acquire(*target_, key, o_.lock_wait_seconds)) {
      // No run id yet: a run that never held the lock records nothing (status would count it as a failure).
      int pid = state::RunLock::holder(*target_, key);
      throw run::LockBusy("another stagesync run is in progress on " + target_->describe() +
                          (pid ? " (server process " + std::to_string(pid) + ")" : std::string()) +
                          "; try again later or pass --wait SECONDS");
    }
    run_id_ = state::new_run_id();
    summary_.run_id = run_id_;
    state::ensure_metadata(*target_);
    target_->exec(state::reverse_book_ddl());
    pending.clear();
    states.clear();
    {
      pg::Pipeline p(*target_);
      reads(p);
      p.run();
    }
    if (!pending.empty()) {
      resolve_pending(*target_, *desktop_, pending, desktop_identity_, out_);
      states.clear();  // promotions moved the watermarks
      pg::Pipeline p(*target_);
      reads(p);
      p.run();
    }
    windows_usable(states);
    pg::Pipeline p(*target_);
    p.set_sync_each();
    add_snapshot_and_counts(p);
    p.run();
  }

  // BEGIN the snapshot's transaction, read the snapshot, count what each entry moves.
  void add_snapshot_and_counts(pg::Pipeline& p) {
    p.add("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    p.add("SELECT pg_catalog.txid_snapshot_xmin(s), pg_catalog.txid_snapshot_xmax(s), (" + identity_sql() +
              ") FROM pg_catalog.txid_current_snapshot() s",
          [&](pg::Result& r) {
            snapshot_ = delta::Watermark{r.int64(0, 0), r.int64(0, 1), r.text(0, 2), {}, -1, {}, -1};
          });
    for (auto& e : entries_) {
      if (e.window.empty()) e.window = window_sql(e.plan->id);
      p.add("SELECT count(*) FROM (" + staged_rows_sql(*e.plan, e.window) + ") x",
            [&e](pg::Result& r) { e.to_stage = r.int64(0, 0); });
    }
  }

  // Whether each entry's window (from its recorded watermark) is usable against this snapshot; an entry
  // whose is not (another or a restored target, ids that may have wrapped) reads every selected row.
  bool windows_usable(const std::map<std::string, std::string>& states) {
    bool usable = true;
    for (auto& e : entries_) {
      auto it = states.find(e.plan->id);
      e.previous = it == states.end() ? std::string() : it->second;
      std::optional<delta::Watermark> previous = it == states.end() ? std::nullopt : delta::from_json(it->second);
      e.method = previous ? "incremental" : "full";
      e.result.mode_used = e.method;
      e.result.reason = previous ? "rows changed since the last run's target snapshot (transaction ids)"
                                 : "first run: every selected row";
      std::string why;
      if (previous && !delta::changed_since(*previous, snapshot_, why)) {
        e.window = "true";
        e.method = e.result.mode_used = "full";
        e.result.reason = "every selected row: " + why;
        usable = false;
      }
    }
    return usable;
  }

  std::string watermarks_json() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& e : entries_) {
      if (e.missed > 0 && e.previous.empty()) continue;  // no watermark yet: the next run reads every row again
      if (e.missed > 0) {
        j[e.plan->id] = {{"target", e.plan->cloud.display_name()},
                         {"desktop", e.plan->desktop.display_name()},
                         {"watermark", nlohmann::json::parse(e.previous)}};
        continue;
      }
      j[e.plan->id] = {{"target", e.plan->cloud.display_name()},
                       {"desktop", e.plan->desktop.display_name()},
                       {"watermark", nlohmann::json::parse(delta::to_json(snapshot_, "xid"))}};
    }
    return j.dump();
  }

  void add_run_record(pg::Pipeline& p, const std::string& status) {
    std::string tables;
    for (const auto& e : entries_) tables += (tables.empty() ? "" : "\n") + e.plan->id;
    p.add(
        "INSERT INTO stagesync.runs (run_id, command, mode, status, host, os_user, tables, stagesync_version, "
        "finished_at) VALUES ($1, 'reverse', 'reverse', $2, $3, $4, pg_catalog.string_to_array($5, E'\\n'), "
        "'0.1.0', CASE WHEN $2 = 'succeeded' THEN clock_timestamp() END)",
        std::vector<pg::Param>{run_id_, status, hostname(), os_user(), tables});
  }

  static std::string hostname() {
    char buf[256] = {0};
    gethostname(buf, sizeof buf - 1);
    return buf;
  }
  static std::string os_user() {
    const char* u = std::getenv("USER");
    return u ? u : std::to_string(getuid());
  }

  // Nothing to move: the watermarks advance, the desktop is not touched (not even a transaction).
  void finish_unchanged() {
    if (o_.plan_only) {
      target_->exec("ROLLBACK");
      return;
    }
    // The run record and the watermarks, through the promotion statements (one transaction, one round trip).
    pg::Pipeline p(*target_);
    p.add("COMMIT");
    p.add("BEGIN");
    add_run_record(p, "succeeded");
    p.add(
        "INSERT INTO stagesync.reverse_pending (run_id, desktop_xid, desktop_pid, desktop_identity, watermarks) "
        "VALUES ($1, 0, 0, $2, $3::jsonb)",
        std::vector<pg::Param>{run_id_, desktop_identity_, watermarks_json()});
    int n = 0;
    const char* const* sql = state::reverse_promote_sql(n);
    for (int i = 0; i < n; ++i) p.add(sql[i], std::vector<pg::Param>{run_id_});
    p.add("COMMIT");
    p.run();
  }

  // 4a: the desktop transaction, its temporary tables, the rows copied down.
  void stage_on_desktop() {
    std::vector<const EntryPlan*> staged;
    for (auto& e : entries_) staged.push_back(e.to_stage > 0 ? e.plan : nullptr);
    for (const auto& s : desktop_setup(staged)) desktop_->defer(s);
    for (size_t n = 0; n < entries_.size(); ++n) {
      EntryRun& e = entries_[n];
      if (e.to_stage == 0) continue;
      auto t0 = std::chrono::steady_clock::now();
      e.result.counts.read = pg::pipe_copy(*target_, "COPY (" + staged_rows_sql(*e.plan, e.window) + ") TO STDOUT",
                                              *desktop_, copy_in_sql(*e.plan, n));
      e.result.counts.seconds += since(t0);
      crash_point("staging");
    }
    target_->defer("COMMIT");  // the snapshot's read-only transaction: travels with the next target statement
  }

  // 4b: judge every staged row; refuse bad values and `conflicts: fail` before any desktop write.
  void judge_on_desktop() {
    std::vector<std::pair<std::string, std::string>> refusals;  // desktop table, what
    pg::Pipeline p(*desktop_);
    for (size_t n = 0; n < entries_.size(); ++n) {
      EntryRun& e = entries_[n];
      if (e.to_stage == 0) continue;
      for (const auto& s : classify_sql(*e.plan, n)) p.add(s);
      std::string table = e.plan->desktop.display_name();
      std::string from = "(from " + e.plan->cloud.display_name() + ") ";
      p.add(duplicate_keys_sql(n), [&refusals, table, from](pg::Result& r) {
        if (r.rows() == 0) return;
        std::string keys;
        for (int i = 0; i < r.rows(); ++i) keys += " " + r.text(i, 0);
        refusals.emplace_back(table, from + r.text(0, 1) + " key(s) appear more than once on the mobile side:" + keys);
      });
      if (std::string sql = refused_values_sql(*e.plan, n); !sql.empty()) {
        p.add(sql, [&refusals, table, from](pg::Result& r) {
          if (r.rows() == 0) return;
          std::string m = from + r.text(0, 4) +
                          " value(s) the desktop column cannot hold; nothing was written to "
                          "the desktop:";
          for (int i = 0; i < r.rows(); ++i) {
            m += "\n    key " + r.text(i, 2) + ", column " + r.text(i, 0) + ": " + r.text(i, 1) + ", value " +
                 (r.is_null(i, 3) ? std::string("NULL") : "'" + r.text(i, 3) + "'");
          }
          refusals.emplace_back(table, m);
        });
      }
      p.add(action_counts_sql(n), [&e, &refusals, table, from](pg::Result& r) {
        for (int i = 0; i < r.rows(); ++i) {
          std::string action = r.text(i, 0);
          if (action == "conflict-fail") {
            refusals.emplace_back(table,
                                  from + r.text(i, 1) +
                                      " conflict(s) (copied row edited on the desktop, changed on the mobile "
                                      "side) and conflicts: fail; nothing was written to the desktop; e.g. key " +
                                      r.text(i, 3));
          }
          count_into(e, action, r.int64(i, 1), r.int64(i, 2), r.text(i, 3));
        }
      });
    }
    p.run();
    if (!refusals.empty()) {
      std::string all = refusals.front().second;
      for (size_t i = 1; i < refusals.size(); ++i) all += "\n  table " + refusals[i].first + ": " + refusals[i].second;
      throw apply::DataRefused(refusals.front().first, all);
    }
    if (o_.plan_only) desktop_->exec("ROLLBACK");
  }

  // 5-7: write, record as pending, commit the desktop, promote.
  void apply_and_commit() {
    pg::Pipeline p(*desktop_);
    for (size_t n = 0; n < entries_.size(); ++n) {
      if (entries_[n].to_stage == 0) continue;
      for (const auto& s : apply_sql(*entries_[n].plan, n)) p.add(s);
    }
    for (size_t n = 0; n < entries_.size(); ++n) {
      if (entries_[n].to_stage == 0) continue;
      p.add(missed_writes_sql(*entries_[n].plan, n), [this, n](pg::Result& r) { entries_[n].missed = r.int64(0, 0); });
    }
    int64_t xid = 0, pid = 0;
    p.add("SELECT pg_catalog.txid_current(), pg_catalog.pg_backend_pid()", [&](pg::Result& r) {
      xid = r.int64(0, 0);
      pid = r.int64(0, 1);
    });
    p.run();
    for (const auto& e : entries_) {
      if (e.missed > 0) {
        out_.warning(e.plan->id + ": " + std::to_string(e.missed) +
                     " desktop row(s) changed by someone else during "
                     "the run were not written; the next run judges them again");
      }
    }
    crash_point("applied");
    // The bookkeeping of what was written travels to the target and is committed there as pending.
    target_->defer("BEGIN");
    pg::pipe_copy(
        *desktop_,
        "COPY (SELECT " + desktop_->literal(run_id_) + ", entry, key, mobile_hash, desktop_hash, op FROM " +
            kBookTable + ") TO STDOUT",
        *target_, "COPY stagesync.reverse_pending_rows (run_id, entry, key, mobile_hash, desktop_hash, op) FROM STDIN");
    crash_point("pending-copied");
    {
      pg::Pipeline t(*target_);
      add_run_record(t, "running");
      t.add(
          "INSERT INTO stagesync.reverse_pending (run_id, desktop_xid, desktop_pid, desktop_identity, watermarks) "
          "VALUES ($1, $2::bigint, $3::int, $4, $5::jsonb)",
          std::vector<pg::Param>{run_id_, std::to_string(xid), std::to_string(pid), desktop_identity_,
                                 watermarks_json()});
      t.add("COMMIT");
      t.run();
    }
    crash_point("pending-committed");
    // A connection lost here leaves the outcome to the next attempt (or run): it asks the desktop (pending.h).
    desktop_->exec("COMMIT");
    crash_point("desktop-committed");
    pg::Pipeline t(*target_);
    add_promotion(t, run_id_, true);
    t.run();
    crash_point("promoted");
  }

  const config::Config& cfg_;
  ReverseOptions o_;
  report::Reporter& out_;
  std::unique_ptr<pg::Connection> desktop_;
  std::unique_ptr<pg::Connection> target_;
  run::SessionMark mark_;
  std::string desktop_identity_;
  ReversePlan plan_;
  std::vector<EntryRun> entries_;
  delta::Watermark snapshot_;
  std::string run_id_;
  report::RunSummary summary_;
};

}  // namespace

report::RunSummary run_reverse(const config::Config& cfg, const ReverseOptions& options, report::Reporter& out) {
  if (!cfg.source.sqlite.empty()) throw run::CheckFailed({sqlite_refusal()});
  run::Backoff backoff(cfg.retry);
  for (int attempt = 1;; ++attempt) {
    try {
      ReverseRun r(cfg, options, out);
      return r.run();
    } catch (const pg::Error& e) {
      if (!e.is_transient() || pg::interrupted()) throw;
      std::string why = std::string(e.what()) +
                        " (an interrupted desktop commit is resolved first: nothing is "
                        "copied twice)";
      if (!backoff.wait_before_retry(attempt, why, out)) throw;
    }
  }
}

void check_reverse(const config::Config& cfg, std::vector<std::string>& facts, std::vector<std::string>& problems) {
  if (cfg.reverse.empty()) return;
  if (!cfg.source.sqlite.empty()) {
    problems.push_back(sqlite_refusal());
    return;
  }
  std::unique_ptr<pg::Connection> desktop, target;
  try {
    desktop = run::connect_side("source", desktop_endpoint(cfg), false);
    target = run::connect_side("target", run::target_endpoint(cfg), false);
  } catch (const pg::Error& e) {
    return;  // run_check reports the connection problem itself
  }
  catalog::Tables cloud = catalog::read_tables(*target, cloud_tables(cfg));
  catalog::Tables desk = catalog::read_tables(*desktop, desktop_tables(cfg));
  ReversePlan plan = resolve(cfg, cloud, desk, {});
  for (auto& p : plan.problems) problems.push_back(std::move(p));
  for (auto& f : plan.facts) facts.push_back(std::move(f));
  // Conversions and constants compiled against the staged columns' types on the desktop (LIMIT 0: nothing runs).
  for (const auto& e : plan.entries) {
    std::vector<std::string> cols;
    for (const auto& c : e.staged) cols.push_back("NULL::" + c.type + " AS " + pg::ident(c.name));
    for (const auto& w : e.writes) {
      if (w.origin.rfind("cloud column", 0) == 0) continue;
      try {
        desktop->exec("SELECT " + w.value + " FROM (SELECT " + pg::join(cols, ", ") + ") s LIMIT 0");
      } catch (const pg::Error& err) {
        if (err.is_connection_loss()) throw;
        problems.push_back(e.config->at.str() + ": reverse " + e.id + ": " + w.origin + " '" + w.raw +
                           "' does not work on the desktop: " + err.what());
      }
    }
  }
}

}  // namespace stagesync::reverse
