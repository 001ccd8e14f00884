#include "run/sync_run.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "apply/apply_table.h"
#include "apply/prepare.h"
#include "backup/backup.h"
#include "delta/change_method.h"
#include "guard/mass_change.h"
#include "pg/interrupt.h"
#include "pg/pipeline.h"
#include "pg/sql.h"
#include "reverse/forward_exclusion.h"
#include "run/backoff.h"
#include "run/commit_run.h"
#include "run/run_errors.h"
#include "stage/staging_table.h"
#include "state/set_aside.h"

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

// What the apply learns about one table before it writes anything: the
// mass-change guard's facts and the foreign keys a delete could cascade through.
struct Judged {
  int64_t owned = -1;                           // owned in-scope target rows before the run (-1: not counted)
  bool owned_exact = true;                      // false: `owned` is the lower bound the guard needed
  int64_t vanishing = 0;                        // of those, the rows a merge deletes
  std::optional<int64_t> previous_source_rows;  // source rows of the last successful sync
  std::vector<apply::Cascade> cascades;
};

// Applies the selected tables, a phase at a time: each phase's statements for
// every table travel in one pipeline (one round trip), so the number of round
// trips does not grow with the number of rows, and barely with tables.
class Applier {
 public:
  Applier(Session& s, const SyncOptions& o, std::vector<report::TableResult>& results, const config::Config& cfg)
      : s_(s), o_(o), results_(results), judged_(s.plan().tables.size()), cfg_(cfg),
        reverse_written_(s.plan().tables.size(), 0) {}

  // Judges every table of `order` (prepare: set-aside rows, refusals) and
  // counts what the guards need. Only staging and reject tables are written;
  // no target row is written or locked. Throws DataRefused.
  void judge(const std::vector<size_t>& order) {
    pg::Pipeline p(s_.target());
    // Rows reverse sync wrote on the desktop never go back up (reverse/forward_exclusion.h).
    bool book = false;
    for (size_t i : order) {
      const config::Reverse* r = s_.unchanged(i) ? nullptr : reverse::reverse_entry_for(cfg_, *s_.staged()[i]);
      if (!r) continue;
      if (!std::exchange(book, true)) {
        for (auto& statement : reverse::book_statements()) p.add(statement);
      }
      s_.planner_regime(p, i);
      reverse::exclude_reverse_written(p, *s_.staged()[i], *r, reverse_written_[i]);
    }
    for (size_t i : order) {
      if (s_.unchanged(i)) continue;
      const apply::TableSql& t = *s_.staged()[i];
      s_.planner_regime(p, i);
      timed(p, i);
      apply::prepare_table(p, t, s_.rejects_table(), s_.plans(), s_.staged(), result(i).counts);
      Judged& j = judged_.at(i);
      if (s_.target_owned(i) >= 0) {
        j.owned = s_.target_owned(i);
        apply::count_vanished(p, t, j.vanishing);
      } else {
        guard::Limits l = guard::limits_for(t.table().config->guards, cfg_.guards);
        apply::count_owned_and_vanished(
            p, t, j.owned, j.vanishing,
            [l](const std::string& would_delete) { return guard::owned_rows_needed_sql(would_delete, l); },
            &j.owned_exact);
      }
      apply::find_cascades(p, t, j.cascades);
      timed(p, i);
    }
    // Target foreign keys no reference covers, once every parent's staged rows are final.
    for (size_t i : order) {
      if (s_.unchanged(i)) continue;
      s_.planner_regime(p, i);
      timed(p, i);
      apply::judge_foreign_keys(p, *s_.staged()[i], s_.plan(), s_.staged());
      timed(p, i);
    }
    if (p.empty()) return;  // nothing changed: nothing to judge (and no round trip)
    previous_source_rows(p, order);
    p.run();
    settle(p);
    for (size_t i : order) {
      result(i).counts.rejected += s_.carried_rejects(i);
      note_ties(i);
    }
    // Foreign keys that would carry a delete elsewhere: rare, so a round trip only when there are some.
    pg::Pipeline c(s_.target());
    for (size_t i : order) {
      if (s_.unchanged(i) || judged_.at(i).cascades.empty()) continue;
      s_.planner_regime(c, i);
      apply::refuse_cascades(c, *s_.staged()[i], o_.strategy, judged_.at(i).cascades);
    }
    if (!c.empty()) c.run();
  }

  // Deletes (children first) and inserts/updates (parents first) of `order`, in one round trip.
  void apply(const std::vector<size_t>& order) {
    pg::Pipeline p(s_.target());
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      if (s_.unchanged(*it)) continue;
      s_.planner_regime(p, *it);
      timed(p, *it);
      apply::delete_vanished(p, *s_.staged()[*it], o_.strategy, result(*it).counts);
      timed(p, *it);
    }
    for (size_t i : order) {
      if (s_.unchanged(i)) continue;
      const apply::TableSql& t = *s_.staged()[i];
      s_.planner_regime(p, i);
      timed(p, i);
      apply::upsert(p, t, o_.strategy, result(i).counts);
      // A whole-table count; incremental runs leave it out (0: not counted).
      if (!t.incremental()) apply::count_foreign(p, t, result(i).counts.preserved);
      timed(p, i);
    }
    if (p.empty()) return;
    try {
      p.run();
      settle(p);
    } catch (const pg::Error& e) {
      if (o_.strategy == apply::Strategy::Merge || e.sqlstate() != "23503") throw;
      // "update or delete on table "parent" violates foreign key constraint ... on table "child"".
      std::string what = e.what(), table = "?";
      size_t at = what.find("on table \"");
      if (at != std::string::npos) table = what.substr(at + 10, what.find('"', at + 10) - at - 10);
      throw apply::DataRefused(table, "swap deletes every owned row and re-inserts it; rows of " +
                                          e.diagnostics().table + " reference them (" + e.diagnostics().constraint +
                                          "), so the run stopped and nothing was changed: use --strategy merge");
    }
  }

  void load_in_batches(size_t i) {
    auto start = std::chrono::steady_clock::now();
    apply::insert_in_batches(s_.target(), *s_.staged()[i], 5000, result(i).counts);
    pg::Pipeline p(s_.target());
    apply::count_foreign(p, *s_.staged()[i], result(i).counts.preserved);
    p.run();
    result(i).counts.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  // duplicates: keep newest: whether the source held rows of one key with
  // equal `by` values (the watermark's `ties`), from prepare's ranking of the
  // staged duplicates (TableCounts::newest_ties) where staging holds whole
  // keys: a full read (every key), a logical one (every row of the listed
  // keys, the others unchanged since the last run, whose flag stands unless a
  // listed key ties now). Rows reverse sync wrote are taken out of staging
  // before that ranking, so such a table records "not known" (its next run
  // takes fingerprints once). Cursor runs count ties in their key digests.
  void note_ties(size_t i) {
    const source::TableRun& r = s_.table(i);
    delta::Method m = r.method.method;
    if (r.unchanged || (m != delta::Method::Full && m != delta::Method::Logical) ||
        !delta::newest_by_digest(r.sql->table())) {
      return;
    }
    int64_t staged = result(i).counts.newest_ties;
    int64_t ties = m == delta::Method::Full ? staged : staged == 1 ? 1 : r.watermark.ties;
    if (reverse::reverse_entry_for(cfg_, *s_.staged()[i]) != nullptr) ties = -1;
    s_.record_ties(i, ties);
  }

  // Adds the per-table record (and its rejects, when `with_rejects`) to `p`; in the caller's transaction.
  void record(pg::Pipeline& p, size_t i, bool with_rejects) {
    const report::TableResult& r = result(i);
    const auto& c = r.counts;
    p.add(
        "INSERT INTO stagesync.table_runs (run_id, table_name, source_table, mode_requested, mode_used, "
        "method_reason, rows_read, inserted, updated, deleted, rejected, orphans_kept, duplicates_dropped, "
        "collisions, seconds, source_rows) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
        "$15, $16)",
        std::vector<pg::Param>{s_.run_id(), r.target, r.source, r.mode_requested, r.mode_used, r.reason,
                               std::to_string(c.read), std::to_string(c.inserted), std::to_string(c.updated),
                               std::to_string(c.deleted), std::to_string(c.rejected), std::to_string(c.orphans_kept),
                               std::to_string(c.duplicates_dropped), std::to_string(c.collisions),
                               std::to_string(c.seconds), std::to_string(r.source_rows)});
    if (with_rejects) record_rejects(p, r.target);
    p.add(
        "INSERT INTO stagesync.table_state (table_name, source_table, last_run_id, last_success_at, watermark) "
        "VALUES ($1, $2, $3, clock_timestamp(), $4::jsonb) ON CONFLICT (table_name) DO UPDATE SET "
        "source_table = EXCLUDED.source_table, last_run_id = EXCLUDED.last_run_id, "
        "last_success_at = EXCLUDED.last_success_at, watermark = EXCLUDED.watermark",
        std::vector<pg::Param>{r.target, r.source, s_.run_id(), s_.watermark_json(i)});
    for (const auto& [sql, params] : s_.table(i).record_sql) p.add(sql, params);
  }

  // Judges table `i` from the counts judge() took; returns a description of
  // the trip when this table must stop the run.
  std::optional<std::string> guard(size_t i, const config::Config& cfg) {
    if (s_.unchanged(i)) return std::nullopt;  // deletes nothing; the source is as the last run left it
    const apply::TableSql& t = *s_.staged()[i];
    report::TableResult& r = result(i);
    const Judged& j = judged_.at(i);
    guard::Facts f;
    // Owned rows no longer in the source, whatever the strategy (swap deletes
    // every owned row but puts the staged ones back).
    f.would_delete = j.vanishing;
    f.owned_before = j.owned;
    f.owned_after = r.source_rows;
    f.source_rows = r.source_rows;
    f.previous_source_rows = j.previous_source_rows;
    r.owned_before = f.owned_before;
    r.owned_before_exact = j.owned_exact;
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

  // The run's rejects (every table's at once, one pass over the run's reject
  // table; or `table`'s only), and the current set-aside rows brought up to
  // date by difference: an unchanged table's stay as they are, a table read
  // whole replaces its own (decision 0016).
  void record_rejects(pg::Pipeline& p, const std::string& table = "") {
    std::vector<std::string> replaced;
    for (size_t i : s_.plan().selected()) {
      if (!s_.unchanged(i) && !s_.set_aside_kept(i)) replaced.push_back(s_.plan().tables[i].target_name);
    }
    state::record_set_aside(p, s_.run_id(), s_.rejects_table(), stage::released_table(s_.run_id()), replaced, table);
  }

  report::TableResult& result(size_t i) { return results_.at(index_.at(i)); }
  void map(size_t plan_index, size_t result_index) {
    if (index_.size() <= plan_index) index_.resize(plan_index + 1);
    index_[plan_index] = result_index;
  }

 private:
  // The last successful sync's source row count of every table in `order`, in one statement.
  void previous_source_rows(pg::Pipeline& p, const std::vector<size_t>& order) {
    std::vector<std::string> names;
    for (size_t i : order) names.push_back(result(i).target);
    p.add(
        "SELECT DISTINCT ON (tr.table_name) tr.table_name, coalesce(tr.source_rows, tr.rows_read) "
        "FROM stagesync.table_runs tr JOIN stagesync.runs r USING (run_id) "
        "WHERE r.status = 'succeeded' AND r.command = 'sync' AND tr.table_name = ANY ($1::text[]) "
        "ORDER BY tr.table_name, r.finished_at DESC",
        std::vector<pg::Param>{pg::text_array(names)}, [this, order](pg::Result& r) {
          for (int row = 0; row < r.rows(); ++row) {
            for (size_t i : order) {
              if (result(i).target == r.text(row, 0)) judged_.at(i).previous_source_rows = r.int64(row, 1);
            }
          }
        });
  }

  // Called before and after adding table `i`'s statements to `p`: their time
  // is added to the table once `p` has run (settle()).
  void timed(pg::Pipeline& p, size_t i) {
    if (open_.first == i && open_.second != SIZE_MAX) {
      spans_.push_back({i, open_.second, p.size()});
      open_ = {SIZE_MAX, SIZE_MAX};
    } else {
      open_ = {i, p.size()};
    }
  }
  void settle(const pg::Pipeline& p) {
    for (const auto& sp : spans_) result(sp.table).counts.seconds += p.seconds(sp.from, sp.to);
    spans_.clear();
  }
  struct Span {
    size_t table, from, to;
  };
  std::pair<size_t, size_t> open_{SIZE_MAX, SIZE_MAX};
  std::vector<Span> spans_;

  Session& s_;
  const SyncOptions& o_;
  std::vector<report::TableResult>& results_;
  std::vector<size_t> index_;
  std::vector<Judged> judged_;  // by plan index
  const config::Config& cfg_;
  std::vector<int64_t> reverse_written_;  // staged rows left out because reverse sync wrote them, by plan index
};

void finish_run_record(pg::Pipeline& p, const std::string& run_id) {
  p.add("UPDATE stagesync.runs SET status = 'succeeded', finished_at = clock_timestamp() WHERE run_id = $1",
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
    Applier a(s, o, summary.tables, cfg);
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
    // Judged on counts taken before anything is written; throws MassChangeRefused.
    auto check_guards = [&] {
      std::vector<std::string> tripped;
      for (size_t i : order) {
        if (auto why = a.guard(i, cfg)) tripped.push_back(*why);
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
      a.judge(order);
      for (size_t i : order) {
        if (auto why = a.guard(i, cfg)) out.warning(*why + " (a sync would stop here)");
      }
      pg::Pipeline p(s.target());
      for (size_t i : order) {
        report::TableResult& r = a.result(i);
        r.planned = true;
        if (s.unchanged(i)) continue;
        s.planner_regime(p, i);
        apply::predict(p, *s.staged()[i], o.strategy, r.counts);
        // As the run counts them: not in incremental runs (a whole-table count).
        if (!s.staged()[i]->incremental()) apply::count_foreign(p, *s.staged()[i], r.counts.preserved);
      }
      p.add("ROLLBACK");
      finish_run_record(p, summary.run_id);
      p.run();
    } else if (o.strategy == apply::Strategy::TruncateFirst) {
      // The seed's development pattern, honestly: judge, back up, clear, then
      // load in committed batches. Not atomic: a failure midway leaves tables
      // partial or empty, and the automatic backup is the way back.
      s.begin();
      a.judge(order);
      check_guards();
      s.target().exec("COMMIT");
      std::vector<const config::Table*> tables;
      for (size_t i : order) tables.push_back(s.plan().tables[i].config);
      summary.backup_id = backup::create(s.target(), cfg, tables,
                                         "automatic, before truncate-first run " + summary.run_id, summary.run_id);
      out.warning("truncate-first: backup " + summary.backup_id +
                  " taken; if this run fails midway, `stagesync restore "
                  "--config " +
                  cfg.path + " --backup " + summary.backup_id + "` brings the tables back");
      {
        pg::Pipeline p(s.target());
        p.add("BEGIN");
        for (auto it = order.rbegin(); it != order.rend(); ++it) {
          apply::delete_vanished(p, *s.staged()[*it], o.strategy, a.result(*it).counts);
        }
        p.add("COMMIT");
        p.run();
      }
      for (size_t i : order) a.load_in_batches(i);
      s.begin();
      pg::Pipeline p(s.target());
      for (size_t i : order) a.record(p, i, false);
      a.record_rejects(p);
      finish_run_record(p, summary.run_id);
      commit_run(s, p, summary.run_id, summary.tables.back().target, out);
    } else if (!o.per_table_transactions) {
      out.info("applying " + std::to_string(order.size()) + " table(s) in one transaction");
      // Three round trips whatever the number of tables: judge (and count for
      // the guards), apply, record and commit.
      s.begin();
      a.judge(order);
      check_guards();
      a.apply(order);
      pg::Pipeline p(s.target());
      for (size_t i : order) a.record(p, i, false);
      a.record_rejects(p);
      finish_run_record(p, summary.run_id);
      if (o.record_in_commit) o.record_in_commit(p, summary.run_id);
      commit_run(s, p, summary.run_id, summary.tables.back().target, out);
    } else {
      out.info("applying " + std::to_string(order.size()) + " table(s), one transaction each");
      // Guards need every table prepared: a rolled-back pass first, so a trip changes nothing.
      s.begin();
      a.judge(order);
      check_guards();
      s.target().exec("ROLLBACK");
      for (size_t i : order) {
        const apply::TableCounts& c = a.result(i).counts;
        a.result(i).counts = apply::TableCounts{.read = c.read, .seconds = c.seconds};
      }
      for (size_t i : order) {
        s.begin();
        a.judge({i});
        a.apply({i});
        pg::Pipeline p(s.target());
        a.record(p, i, true);
        if (i == order.back()) finish_run_record(p, summary.run_id);
        commit_run(s, p, summary.run_id, a.result(i).target, out, i == order.back());
      }
    }
    for (size_t i : order) out.table_done(a.result(i));
    s.drop_staging();
    s.keep();  // a follower's next batch starts from this session (SessionOptions::keep)
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
  if (options.strategy == apply::Strategy::TruncateFirst || options.no_retry) policy.attempts = 1;
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
