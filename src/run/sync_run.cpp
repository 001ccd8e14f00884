#include "run/sync_run.h"

#include <algorithm>
#include <chrono>

#include "apply/apply_table.h"
#include "apply/prepare.h"
#include "backup/backup.h"
#include "delta/change_method.h"
#include "guard/mass_change.h"
#include "pg/interrupt.h"
#include "run/backoff.h"
#include "run/commit_run.h"
#include "run/run_errors.h"

namespace stagesync::run {
namespace {

void refuse_unsafe(const config::Config& cfg, const SyncOptions& o) {
  if (o.strategy != apply::Strategy::TruncateFirst) return;
  if (cfg.target.environment != "development" || !o.accept_data_loss) {
    throw Refused(
        "--strategy truncate-first clears the target tables before loading them: if the run fails midway, the "
        "rows are gone (this is how 726 client records were lost). It runs only against a target declared "
        "'environment: development' and with --i-accept-data-loss. Use --strategy merge (the default) or swap.");
  }
}

// Applies tables [from, to) of `order` in the current transaction.
class Applier {
 public:
  Applier(Session& s, const SyncOptions& o, std::vector<report::TableResult>& results)
      : s_(s), o_(o), results_(results) {}

  void prepare(size_t i) {
    if (s_.unchanged(i)) return;
    auto start = std::chrono::steady_clock::now();
    apply::prepare_table(s_.target(), *s_.staged()[i], s_.rejects_table(), s_.plans(), s_.staged(), result(i).counts);
    result(i).counts.rejected += s_.carried_rejects(i);
    add_time(i, start);
  }
  void delete_vanished(size_t i) {
    if (s_.unchanged(i)) return;
    auto start = std::chrono::steady_clock::now();
    apply::delete_vanished(s_.target(), *s_.staged()[i], o_.strategy, result(i).counts);
    add_time(i, start);
  }
  void load_in_batches(size_t i) {
    auto start = std::chrono::steady_clock::now();
    apply::insert_in_batches(s_.target(), *s_.staged()[i], 5000, result(i).counts);
    result(i).counts.preserved = apply::count_foreign(s_.target(), *s_.staged()[i]);
    add_time(i, start);
  }
  void upsert(size_t i) {
    if (s_.unchanged(i)) return;
    auto start = std::chrono::steady_clock::now();
    apply::upsert(s_.target(), *s_.staged()[i], o_.strategy, result(i).counts);
    // A whole-table count; incremental runs leave it out (0: not counted).
    if (!s_.staged()[i]->incremental()) result(i).counts.preserved = apply::count_foreign(s_.target(), *s_.staged()[i]);
    add_time(i, start);
  }
  // Writes the per-table record (and its rejects, when `with_rejects`); in the caller's transaction.
  void record(size_t i, bool with_rejects) {
    const report::TableResult& r = result(i);
    const auto& c = r.counts;
    s_.target().exec(
        "INSERT INTO stagesync.table_runs (run_id, table_name, source_table, mode_requested, mode_used, method_reason, "
        "rows_read, inserted, updated, deleted, rejected, orphans_kept, duplicates_dropped, collisions, seconds, "
        "source_rows) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        std::vector<pg::Param>{s_.run_id(), r.target, r.source, r.mode_requested, r.mode_used, r.reason,
                               std::to_string(c.read), std::to_string(c.inserted), std::to_string(c.updated),
                               std::to_string(c.deleted), std::to_string(c.rejected), std::to_string(c.orphans_kept),
                               std::to_string(c.duplicates_dropped), std::to_string(c.collisions),
                               std::to_string(c.seconds), std::to_string(r.source_rows)});
    if (with_rejects) {
      s_.target().exec(
          "INSERT INTO stagesync.rejects (run_id, table_name, row_key, column_name, reason) "
          "SELECT $1, table_name, row_key, column_name, reason FROM " + s_.rejects_table() + " WHERE table_name = $2",
          std::vector<pg::Param>{s_.run_id(), r.target});
    }
    s_.target().exec(
        "INSERT INTO stagesync.table_state (table_name, source_table, last_run_id, last_success_at, watermark) "
        "VALUES ($1, $2, $3, clock_timestamp(), $4::jsonb) ON CONFLICT (table_name) DO UPDATE SET "
        "source_table = EXCLUDED.source_table, last_run_id = EXCLUDED.last_run_id, "
        "last_success_at = EXCLUDED.last_success_at, watermark = EXCLUDED.watermark",
        std::vector<pg::Param>{r.target, r.source, s_.run_id(), s_.watermark_json(i)});
  }

  // Measures what the apply is about to do and judges it; returns a
  // description of the trip when this table must stop the run.
  // With `deleted`, the merge deletes already ran in this transaction and
  // their count is the planned deletions (the rows are still there to count as owned before).
  std::optional<std::string> guard(size_t i, const config::Config& cfg, std::optional<int64_t> deleted = std::nullopt) {
    if (s_.unchanged(i)) return std::nullopt;  // deletes nothing; the source is as the last run left it
    const apply::TableSql& t = *s_.staged()[i];
    report::TableResult& r = result(i);
    guard::Facts f;
    f.would_delete = deleted ? *deleted : apply::count_vanished(s_.target(), t);
    f.owned_before = s_.target_owned(i) >= 0 ? s_.target_owned(i)
                                             : apply::count_owned(s_.target(), t) + (deleted ? *deleted : 0);
    f.owned_after = r.source_rows;
    f.source_rows = r.source_rows;
    pg::Result prev = s_.target().exec(
        "SELECT coalesce(tr.source_rows, tr.rows_read) FROM stagesync.table_runs tr JOIN stagesync.runs r USING (run_id) "
        "WHERE r.status = 'succeeded' AND r.command = 'sync' AND tr.table_name = $1 "
        "ORDER BY r.finished_at DESC LIMIT 1",
        std::vector<pg::Param>{r.target});
    if (prev.rows()) f.previous_source_rows = prev.int64(0, 0);
    r.owned_before = f.owned_before;
    r.would_delete = f.would_delete;
    auto trip = guard::judge(f, guard::limits_for(t.table().config->guards, cfg.guards));
    if (!trip) return std::nullopt;
    r.guard_tripped = *trip;
    bool allowed = o_.allow_mass_delete_all ||
                   std::find_if(o_.allow_mass_delete.begin(), o_.allow_mass_delete.end(), [&](const std::string& n) {
                     return n == r.source || n == r.target;
                   }) != o_.allow_mass_delete.end();
    if (allowed) {
      r.guard_overridden = true;
      return std::nullopt;
    }
    return "table " + r.target + ": " + *trip;
  }

  // Every table's rejects at once (one pass over the run's reject table).
  void record_rejects() {
    s_.target().exec("INSERT INTO stagesync.rejects (run_id, table_name, row_key, column_name, reason) "
                     "SELECT $1, table_name, row_key, column_name, reason FROM " + s_.rejects_table(),
                     std::vector<pg::Param>{s_.run_id()});
  }

  report::TableResult& result(size_t i) { return results_.at(index_.at(i)); }
  void map(size_t plan_index, size_t result_index) {
    if (index_.size() <= plan_index) index_.resize(plan_index + 1);
    index_[plan_index] = result_index;
  }

 private:
  void add_time(size_t i, std::chrono::steady_clock::time_point start) {
    result(i).counts.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  Session& s_;
  const SyncOptions& o_;
  std::vector<report::TableResult>& results_;
  std::vector<size_t> index_;
};

void finish_run_record(pg::Connection& target, const std::string& run_id) {
  target.exec("UPDATE stagesync.runs SET status = 'succeeded', finished_at = clock_timestamp() WHERE run_id = $1",
              std::vector<pg::Param>{run_id});
}

report::RunSummary run_once(const config::Config& cfg, const SyncOptions& o, report::Reporter& out) {
  auto start = std::chrono::steady_clock::now();
  report::RunSummary summary;
  summary.command = o.plan_only ? "plan" : "sync";
  summary.mode = o.mode;
  summary.strategy = apply::to_string(o.strategy);

  Session s(cfg, o.session, out);
  s.open();
  summary.run_id = s.begin_run(summary.command, o.mode, summary.strategy);
  try {
    out.info(summary.command + " " + summary.run_id + ": staging " + std::to_string(s.plan().selected().size()) +
             " table(s) from the source (production tables untouched)");
    s.stage_selected(o.mode == "incremental", o.strategy);
    std::vector<size_t> order = s.plan().selected();
    Applier a(s, o, summary.tables);
    for (size_t k = 0; k < order.size(); ++k) {
      const plan::TablePlan& t = s.plan().tables[order[k]];
      report::TableResult r;
      r.source = t.name;
      r.target = t.target_name;
      r.mode_requested = o.mode;
      r.mode_used = delta::to_string(s.method(order[k]).method);
      r.reason = s.method(order[k]).reason;
      r.counts.read = s.rows_read(order[k]);
      r.source_rows = s.source_rows(order[k]);
      r.counts.seconds = s.stage_seconds(order[k]);
      summary.tables.push_back(r);
      a.map(order[k], k);
    }
    // Judges every table before anything is applied; throws MassChangeRefused.
    auto check_guards = [&](bool after_merge_deletes) {
      std::vector<std::string> tripped;
      for (size_t i : order) {
        std::optional<int64_t> deleted;
        if (after_merge_deletes) deleted = a.result(i).counts.deleted;
        if (auto why = a.guard(i, cfg, deleted)) tripped.push_back(*why);
      }
      for (size_t i : order) {
        const report::TableResult& r = a.result(i);
        if (r.guard_overridden) out.warning("mass-change guard overridden for " + r.target + ": " + r.guard_tripped);
      }
      if (!tripped.empty()) {
        for (const auto& t : tripped) out.warning(t);
        throw MassChangeRefused(tripped, summary.tables);
      }
    };
    if (o.plan_only) {
      s.begin();
      for (size_t i : order) a.prepare(i);
      for (size_t i : order) {
        if (auto why = a.guard(i, cfg)) out.warning(*why + " (a sync would stop here)");
      }
      for (size_t i : order) {
        report::TableResult& r = a.result(i);
        r.planned = true;
        if (s.unchanged(i)) continue;
        apply::TableCounts p = apply::predict(s.target(), *s.staged()[i], o.strategy);
        r.counts.inserted = p.inserted;
        r.counts.updated = p.updated;
        r.counts.deleted = p.deleted;
        // As the run counts them: not in incremental runs (a whole-table count).
        if (!s.staged()[i]->incremental()) r.counts.preserved = apply::count_foreign(s.target(), *s.staged()[i]);
      }
      s.target().exec("ROLLBACK");
      finish_run_record(s.target(), summary.run_id);
    } else if (o.strategy == apply::Strategy::TruncateFirst) {
      // The seed's development pattern, honestly: judge, back up, clear, then
      // load in committed batches. Not atomic: a failure midway leaves tables
      // partial or empty, and the automatic backup is the way back.
      s.begin();
      for (size_t i : order) a.prepare(i);
      check_guards(false);
      s.target().exec("COMMIT");
      std::vector<const config::Table*> tables;
      for (size_t i : order) tables.push_back(s.plan().tables[i].config);
      summary.backup_id = backup::create(s.target(), cfg, tables, "automatic, before truncate-first run " + summary.run_id);
      out.warning("truncate-first: backup " + summary.backup_id + " taken; if this run fails midway, `stagesync restore "
                  "--config " + cfg.path + " --backup " + summary.backup_id + "` brings the tables back");
      s.begin();
      for (auto it = order.rbegin(); it != order.rend(); ++it) a.delete_vanished(*it);
      s.target().exec("COMMIT");
      for (size_t i : order) a.load_in_batches(i);
      s.begin();
      for (size_t i : order) a.record(i, false);
      a.record_rejects();
      finish_run_record(s.target(), summary.run_id);
      commit_run(s, summary.run_id, summary.tables.back().target, out);
    } else if (!o.per_table_transactions) {
      out.info("applying " + std::to_string(order.size()) + " table(s) in one transaction");
      s.begin();
      for (size_t i : order) a.prepare(i);
      bool merge = o.strategy == apply::Strategy::Merge;
      if (!merge) check_guards(false);
      for (auto it = order.rbegin(); it != order.rend(); ++it) a.delete_vanished(*it);
      if (merge) check_guards(true);  // the deletes' own counts; a trip rolls them back
      for (size_t i : order) a.upsert(i);
      for (size_t i : order) a.record(i, false);
      a.record_rejects();
      finish_run_record(s.target(), summary.run_id);
      commit_run(s, summary.run_id, summary.tables.back().target, out);
    } else {
      out.info("applying " + std::to_string(order.size()) + " table(s), one transaction each");
      // Guards need every table prepared: a rolled-back pass first, so a trip changes nothing.
      s.begin();
      for (size_t i : order) a.prepare(i);
      check_guards(false);
      s.target().exec("ROLLBACK");
      for (size_t i : order) {
        const apply::TableCounts& c = a.result(i).counts;
        a.result(i).counts = apply::TableCounts{.read = c.read, .seconds = c.seconds};
      }
      for (size_t i : order) {
        s.begin();
        a.prepare(i);
        a.delete_vanished(i);
        a.upsert(i);
        a.record(i, true);
        if (i == order.back()) finish_run_record(s.target(), summary.run_id);
        commit_run(s, summary.run_id, a.result(i).target, out);
      }
    }
    for (size_t i : order) out.table_done(a.result(i));
    s.drop_staging();
  } catch (const std::exception& e) {
    s.fail(e.what());
    throw;
  }
  summary.outcome = "succeeded";
  summary.exit_code = 0;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace

report::RunSummary run_sync(const config::Config& cfg, const SyncOptions& options, report::Reporter& out) {
  refuse_unsafe(cfg, options);
  config::Retry policy = cfg.retry;
  // truncate-first is not retried: a retry would back up the half-loaded
  // tables. It fails fast; the automatic backup of the first attempt restores.
  if (options.strategy == apply::Strategy::TruncateFirst) policy.attempts = 1;
  Backoff backoff(policy);
  SyncOptions o = options;
  for (int attempt = 1;; ++attempt) {
    try {
      return run_once(cfg, o, out);
    } catch (const pg::Error& e) {
      pg::throw_if_interrupted();
      if (!e.is_transient()) throw;
      std::string why = (e.sqlstate().empty() ? "" : "SQLSTATE " + e.sqlstate() + ": ") + e.what();
      if (!backoff.wait_before_retry(attempt, why, out)) throw;
      // The failed attempt's server session may take a moment to end and release the run lock.
      o.session.lock_wait_seconds = std::max(o.session.lock_wait_seconds, 30.0);
    }
  }
}

}  // namespace stagesync::run
