#include "source/postgres/postgres_source.h"

#include <chrono>
#include <map>
#include <set>

#include "logical/exported_snapshot.h"
#include "pg/copy_pipe.h"
#include "pg/sql.h"
#include "source/postgres/lookup_image.h"
#include "source/postgres/newest_keys.h"
#include "source/postgres/reconcile_batch.h"
#include "source/postgres/snapshot.h"
#include "source/postgres/source_query.h"
#include "stage/copy_chain.h"
#include "state/lookup_images.h"

namespace stagesync::source::postgres {
namespace {

// Tables estimated at fewer rows keep their counting scan when written
// (counted_by_digests()): it costs about 3 ms per 10,000 rows (jobshead's
// 240,000: 74 ms), a wrong guess one more round trip to the target (30-200 ms).
constexpr int64_t kCountedByDigestsFrom = 200000;

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A listed table's keys as one text[] value per key column (keys_in()).
std::vector<std::string> listed_arrays(const KeyList& list) {
  std::vector<std::string> arrays;
  for (const auto& column : list.columns) arrays.push_back(pg::text_array(column));
  return arrays;
}

// Of the plan's source tables and lookup tables, those whose every row
// change reaches logical decoding under their own name: plain tables without
// inheritance children (a view's, a partitioned or inherited table's changes
// are decoded under other tables' names). One query for all.
std::set<std::string> decoded_under_own_name(pg::Connection& source, const plan::SyncPlan& plan) {
  std::vector<std::string> names;
  for (const auto& t : plan.tables) {
    names.push_back(t.source.qualified_name());
    for (const auto& l : t.lookups) names.push_back(l.from.qualified_name());
  }
  pg::Result r = source.exec(
      "SELECT n FROM unnest($1::text[]) n WHERE (SELECT c.relkind = 'r' AND NOT c.relhassubclass FROM "
      "pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass(n))",
      std::vector<pg::Param>{pg::text_array(names)});
  std::set<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.insert(r.text(i, 0));
  return out;
}

// Row counts of whole source tables (no `scope:`) the run settled before table
// `i` (plan order: parents first), by qualified name: a lookup reading one of
// them is not counted again.
std::map<std::string, int64_t> counted_before(const StageRun& run, size_t i) {
  std::map<std::string, int64_t> counted;
  for (size_t j : run.plan.selected()) {
    if (j == i) break;
    if (run.plan.tables[j].scope.empty() && run.tables[j].watermark.rows >= 0) {
      counted[run.plan.tables[j].source.qualified_name()] = run.tables[j].watermark.rows;
    }
  }
  return counted;
}

}  // namespace

PostgresSource::PostgresSource(std::unique_ptr<pg::Connection> conn, const config::Config& cfg)
    : conn_(std::move(conn)) {
  conn_->defer("SET statement_timeout = 0");
  // The reads are scans, hash joins and COPY: compiling them rarely pays,
  // and estimates inflated by key-set conditions made a reconciliation's
  // fetch spend over a second compiling (PostgreSQL 11+ has JIT).
  if (conn_->server_version() >= 110000) conn_->defer("SET jit = off");
  if (!cfg.source.timezone.empty()) {
    conn_->defer("SELECT pg_catalog.set_config('TimeZone', " + conn_->literal(cfg.source.timezone) + ", false)");
  }
}

std::string PostgresSource::describe() const {
  return conn_->describe() + " (PostgreSQL " + std::to_string(conn_->server_version() / 10000) + ")";
}

catalog::Tables PostgresSource::read_tables(const std::vector<std::string>& names) {
  return catalog::read_tables(*conn_, names);
}

void PostgresSource::before_run(pg::Pipeline& batch, bool incremental) {
  target_text_hash_.clear();
  image_headers_.clear();
  if (!incremental) return;
  batch.add(text_hash_probe(), [this](pg::Result& r) { target_text_hash_ = r.text(0, 0); });
  // Which lookups' stored images a drift check can use is known before the
  // digests (LookupImages): a lookup without one is not digested.
  batch.add(state::image_headers_sql(), [this](pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i)
      image_headers_[r.text(i, 0)][static_cast<int>(r.int64(i, 1))] = {r.text(i, 2), r.text(i, 3)};
  });
}

void PostgresSource::stage(StageRun& run) {
  std::string identity = source_identity(*conn_);
  bool hashes_match = !run.incremental || conn_->exec(text_hash_probe()).text(0, 0) == target_text_hash_;
  // One snapshot for every table: parents and children are read as of the same instant.
  if (snapshot_name_.empty()) {
    conn_->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  } else {
    logical::begin_in_snapshot(*conn_, snapshot_name_);
  }
  snapshot_ = current_snapshot(*conn_, identity);
  lists_.clear();
  if (in_snapshot_) {
    if (auto lists = in_snapshot_(*conn_, run.plan); lists && lists->size() == run.plan.tables.size()) lists_ = *lists;
  }
  plain_tables_ = lists_.empty() ? std::set<std::string>{} : decoded_under_own_name(*conn_, run.plan);
  if (run.incremental) {
    stage_incremental(run, hashes_match);
  } else {
    stage_full(run);
  }
  conn_->exec("COMMIT");
}

void PostgresSource::set_snapshot(std::string snapshot_name, InSnapshot in_snapshot) {
  snapshot_name_ = std::move(snapshot_name);
  in_snapshot_ = std::move(in_snapshot);
}

void PostgresSource::stage_full(StageRun& run) {
  // A full read loads every table: their COPYs go in one chained message
  // (each table after the first starts in the round trip that ends the last).
  std::vector<stage::StagingTable*> order;
  for (size_t i : run.plan.selected()) order.push_back(run.tables[i].staging.get());
  stage::StagingChain chain(run.target, order);
  for (size_t i : run.plan.selected()) {
    TableRun& r = run.tables[i];
    auto start = std::chrono::steady_clock::now();
    choose(run, i, true);  // (keep newest: `ties` is judged on the staged rows, run::Session::record_ties())
    std::string copy_out = source_copy(run.plan.tables[i], *conn_);
    r.rows_read = r.source_rows = r.watermark.rows = chain.load(*r.staging, [&](pg::CopyIn& in) {
      return pg::pipe_copy(*conn_, copy_out, in, [&](int64_t k) { run.progress(i, k, since(start), false); });
    });
    r.stage_seconds = since(start);
    run.progress(i, r.rows_read, r.stage_seconds, true);
  }
}

void PostgresSource::stage_incremental(StageRun& run, bool hashes_match) {
  // In phases whose target round trips do not grow with the number of tables:
  // what each table reads first (its change window, or all of it) in one
  // chained COPY, then every table that may have changed reconciled together
  // (ReconcileBatch).
  size_t n = run.plan.tables.size();
  TextSettings settings = read_text_settings(*conn_);
  stage::CopyChain reads;
  std::vector<size_t> reconciled;
  std::vector<std::string> window(n);  // the SELECT each cursor table's first read was (empty: none)
  for (size_t i : run.plan.selected()) {
    TableRun& r = run.tables[i];
    const plan::TablePlan& t = run.plan.tables[i];
    auto start = std::chrono::steady_clock::now();
    std::string not_listed;  // why the batch's key list was not used
    int64_t window_rows =
        !lists_.empty() && choose_listed(run, i, lists_[i], not_listed) ? -1 : choose(run, i, hashes_match);
    if (!not_listed.empty()) r.method.reason += " (no key list: " + not_listed + ")";
    if (r.unchanged) {
      r.stage_seconds = since(start);
      run.progress(i, r.rows_read, r.stage_seconds, true);
      continue;
    }
    delta::Method m = r.method.method;
    if (m == delta::Method::Fingerprint && delta::newest_by_digest(t)) {
      // (cursor: counted by its digests; full: judged on the staged rows)
      r.watermark.ties = conn_->exec(newest_ties(t, *conn_)).int64(0, 0);
    }
    bool windowed = m == delta::Method::Cursor || m == delta::Method::Logical;
    std::string where = windowed ? r.method.window : m == delta::Method::Fingerprint ? "false" : "";
    // A read known to be empty is not sent: fingerprints stage nothing first,
    // and a cursor window the counting scan found empty.
    bool empty = where == "false" || (m == delta::Method::Cursor && window_rows == 0);
    if (!empty) {
      if (windowed) window[i] = source_select(t, *conn_, where);
      auto loaded = [&r, m](int64_t rows, const std::vector<int64_t>&) {
        r.rows_read = rows;
        if (m != delta::Method::Logical) r.source_rows = rows;  // (logical: counted by choose_listed())
        if (m == delta::Method::Full) r.watermark.rows = rows;
      };
      reads.add(stage::CopyChain::Copy{copy_from(*conn_, source_select(t, *conn_, where)),
                                       r.staging->copy_in(),
                                       {r.staging->analyze_sql()},
                                       loaded});
    }
    if (m != delta::Method::Full) reconciled.push_back(i);
    r.stage_seconds = since(start);
  }
  auto start = std::chrono::steady_clock::now();
  reads.run(run.target);
  if (!reconciled.empty()) {
    ReconcileBatch batch(*conn_, run.target, settings, run.created);
    for (size_t i : reconciled) {
      ReconcileInput in = reconcile_input(run, i, settings);
      if (!window[i].empty()) in.staged.push_back(window[i]);
      // The deletions table is named at once: children's reconciliation reads it.
      run.tables[i].sql->set_deletions(batch.add(std::move(in)).result().deletions);
    }
    batch.run();
    for (size_t i : reconciled) {
      TableRun& r = run.tables[i];
      const Reconciled& rec = batch.result(i);
      if (r.method.method != delta::Method::Logical) {  // (no digests: nothing counted)
        r.source_rows = rec.source_rows;
        r.target_owned = rec.target_owned;
        if (r.watermark.rows < 0) r.watermark.rows = rec.source_rows;  // (counted_by_digests())
      }
      r.deletions = rec.deletion_count;
      if (r.method.method == delta::Method::Cursor) r.watermark.ties = rec.ties;
      // carried_rejects: written by the batch's deferred count (ReconcileInput::rejects_carried).
      r.rows_read += rec.rows_fetched;
      r.staging->analyze();
    }
  }
  // The shared phases' time, spread over the tables that took part in them.
  size_t read = 0;
  for (size_t i : run.plan.selected()) read += run.tables[i].unchanged ? 0 : 1;
  double shared = read ? since(start) / static_cast<double>(read) : 0;
  for (size_t i : run.plan.selected()) {
    TableRun& r = run.tables[i];
    if (r.unchanged) continue;
    r.stage_seconds += shared;
    run.progress(i, r.rows_read, r.stage_seconds, true);
  }
}

int64_t PostgresSource::choose(StageRun& run, size_t i, bool hashes_match) {
  TableRun& r = run.tables[i];
  const plan::TablePlan& t = run.plan.tables[i];
  pg::Result rel = conn_->exec(
      "SELECT greatest(c.reltuples, 0)::bigint, c.relkind::text, pg_catalog.pg_stat_get_tuples_inserted(c.oid) + "
      "pg_catalog.pg_stat_get_tuples_updated(c.oid) + pg_catalog.pg_stat_get_tuples_deleted(c.oid) "
      "FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)",
      std::vector<pg::Param>{t.source.qualified_name()});
  r.estimate = rel.rows() && rel.int64(0, 0) > 0 ? rel.int64(0, 0) : -1;
  delta::TableFacts facts;
  facts.incremental_requested = run.incremental;
  facts.strategy = run.strategy;
  facts.row_versions = rel.rows() && std::string("rpm").find(rel.text(0, 1)) != std::string::npos;
  facts.fingerprints_match = hashes_match;
  facts.now = snapshot_;
  facts.now.lookup_rows = lookup_rows(t, *conn_, counted_before(run, i));
  r.watermark = facts.now;
  r.watermark.writes = rel.rows() ? rel.int64(0, 2) : -1;
  auto prev = run.previous.find(t.target_name);
  if (prev != run.previous.end()) facts.previous = delta::from_json(prev->second.first);
  if (run.incremental && facts.previous && !t.lookups.empty()) {
    facts.lookup_change = lookup_changes(*conn_, *facts.previous, facts.now);
    // The lookups give what they gave: their stored images hold for this run too.
    if (facts.lookup_change.empty())
      r.record_sql.push_back(state::keep_images(t.target_name, prev->second.second, run.run_id));
  }
  r.method = delta::choose_method(t, facts);
  if (facts.previous) r.previous_rejects = facts.previous->rejects_run;
  if (r.previous_rejects.empty() && prev != run.previous.end()) r.previous_rejects = prev->second.second;
  r.watermark.rejects_run = run.run_id;

  // The table's in-scope source rows, and how many are in the change window.
  std::string why;
  std::optional<std::string> window;
  if (run.incremental && run.strategy == apply::Strategy::Merge && facts.row_versions && facts.previous &&
      t.config->incremental.method != "fingerprint" && facts.lookup_change.empty()) {
    window = delta::changed_since(*facts.previous, facts.now, why);
  }
  if (!window && r.method.method == delta::Method::Full) return -1;
  if (window && counted_by_digests(run, i, *window, facts.previous->writes)) return -1;
  pg::Result c = conn_->exec(source_count(t, *conn_, window ? *window : "false"));
  r.watermark.rows = c.int64(0, 0);
  if (!window) return -1;
  int64_t window_rows = c.int64(0, 1);
  if (window_rows == 0 && facts.previous->rows == r.watermark.rows && !run.references_changed(t) &&
      (!t.keyed() || !r.collision_freed)) {
    r.watermark.ties = facts.previous->ties;  // (the same rows)
    run.mark_unchanged(i, delta::MethodChoice{
                              delta::Method::Cursor,
                              "cursor: nothing changed since the last run (no new row version, same row count)", "",
                              false});
  }
  // The rows the method's window reads, when it is the counted one (keep
  // newest: every row of a key with a row in it, none when it is empty).
  if (r.method.method != delta::Method::Cursor) return -1;
  if (r.method.window == *window) return window_rows;
  return t.duplicates.keep_newest && window_rows == 0 ? 0 : -1;
}

bool PostgresSource::counted_by_digests(StageRun& run, size_t i, const std::string& window, int64_t writes_before) {
  TableRun& r = run.tables[i];
  const plan::TablePlan& t = run.plan.tables[i];
  // The counting scan proves a table unchanged; a table the statistics say
  // was written since the last run is most likely changed, and its key
  // digests (which follow) count its rows and window rows in the same pass:
  // the counting scan is skipped. A wrong guess (the statistics lag a write
  // by about a second, so a write just before the last run moves them for
  // this one) costs time, never a row: the digests of an unchanged table
  // agree and nothing is fetched, but its empty window is read, one more
  // target round trip: only tables whose counting scan costs more than that
  // are guessed about.
  // Not for: keep newest (its digests count keys), a `scope:` filter (writes
  // outside it move the statistics too), a table a lookup reads (a later
  // table's watermark counts it, counted_before()).
  if (r.method.method != delta::Method::Cursor || r.method.window != window || t.duplicates.keep_newest ||
      !t.scope.empty() || !t.keyed() || r.estimate < kCountedByDigestsFrom || writes_before < 0 ||
      r.watermark.writes < 0 || r.watermark.writes == writes_before) {
    return false;
  }
  for (const auto& other : run.plan.tables)
    for (const auto& l : other.lookups)
      if (l.from.qualified_name() == t.source.qualified_name()) return false;
  r.watermark.rows = -1;  // (set from the digests' count: stage_incremental())
  r.method.reason += "; written since the last run (the statistics say): counted by its key digests";
  return true;
}

bool PostgresSource::choose_listed(StageRun& run, size_t i, const KeyList& list, std::string& why_not) {
  TableRun& r = run.tables[i];
  const plan::TablePlan& t = run.plan.tables[i];
  auto decline = [&why_not](std::string why) {
    why_not = std::move(why);
    return false;
  };
  if (!t.keyed()) return false;  // (never listed: nothing to say)
  if (list.kind == KeyList::Kind::whole) return decline(list.why);
  if (run.strategy != apply::Strategy::Merge) return decline("not the merge strategy");
  // What the last run recorded: the in-scope rows, the lookups' tables'
  // rows, of a snapshot of this source the list starts from.
  auto prev = run.previous.find(t.target_name);
  if (prev == run.previous.end()) return decline("no earlier run");
  if (prev->second.second != list.since_run) {
    return decline("its last run, " + prev->second.second + ", is not the one the stream follows, " + list.since_run);
  }
  std::optional<delta::Watermark> previous = delta::from_json(prev->second.first);
  std::string why;
  if (!previous || previous->rows < 0) return decline("the last run recorded no row count");
  if (!delta::changed_since(*previous, snapshot_, why)) return decline(why);
  for (const auto& k : t.key)
    if (t.column(k)->lookup >= 0) return decline("a looked-up key column");  // (no column of the table)
  if (!plain_tables_.count(t.source.qualified_name())) return decline("not a plain table (decoded under another name)");
  for (const auto& l : t.lookups) {
    if (!plain_tables_.count(l.from.qualified_name())) return decline("a lookup's table is not a plain table");
    for (const auto& m : l.match)
      if (!t.source.find(m)) return false;  // (plan::resolve() checks it; a list is never trusted beyond it)
  }

  r.previous_rejects = previous->rejects_run.empty() ? prev->second.second : previous->rejects_run;
  r.watermark = snapshot_;
  r.watermark.lookup_rows = previous->lookup_rows;  // (their tables did not change: else counted below)
  r.watermark.ties = previous->ties;  // (the unlisted keys' rows did not change; listed: run::Applier::note_ties())
  if (list.kind == KeyList::Kind::untouched && !run.references_changed(t) && !r.collision_freed) {
    r.watermark.rows = previous->rows;
    run.mark_unchanged(i, delta::MethodChoice{delta::Method::Logical,
                                              "logical: the desktop's write-ahead log names no change of this table "
                                              "since the last run",
                                              "", false});
    return true;
  }
  // The rows to read: those of the listed keys, and those holding a listed
  // match value of a lookup (their looked-up value may differ now).
  std::vector<std::string> read;
  if (list.size()) {
    std::vector<std::string> matched, types;
    for (const auto& k : t.key) {
      matched.push_back("t." + pg::ident(k) + "::" + t.column(k)->stage_type);
      types.push_back(t.column(k)->stage_type);
    }
    read.push_back("(" + keys_in(*conn_, matched, types, listed_arrays(list)) + ")");
  }
  size_t matches = 0;
  for (size_t l = 0; l < list.lookup_matches.size() && l < t.lookups.size(); ++l) {
    const auto& values = list.lookup_matches[l];
    if (values.empty() || values.front().empty()) continue;
    std::vector<std::string> matched, types, arrays;
    for (size_t m = 0; m < t.lookups[l].match.size(); ++m) {
      const catalog::Column* c = t.source.find(t.lookups[l].match[m]);
      matched.push_back("t." + pg::ident(c->name));
      types.push_back(c->type);
      arrays.push_back(pg::text_array(values[m]));
    }
    std::string holding = keys_in(*conn_, matched, types, arrays);
    if (t.duplicates.keep_newest) {
      // Every row of a key with a row holding the value: the newest is
      // chosen among all of them, not among those that hold it.
      std::string keys = pg::column_list(t.key, "t");
      holding =
          "(" + keys + ") IN (SELECT " + keys + " FROM " + t.source.qualified_name() + " t WHERE " + holding + ")";
    }
    read.push_back("(" + holding + ")");
    matches += values.front().size();
  }
  // The in-scope rows, for the guards and the next run's watermark: the last
  // run's count and the rows the record inserted and deleted, or (a `scope:`
  // filter, which the record's rows are not judged by) one scan at the source.
  if (t.scope.empty()) {
    r.watermark.rows = r.source_rows = previous->rows + list.row_change;
  } else {
    r.watermark.rows = r.source_rows = conn_->exec(source_count(t, *conn_, "false")).int64(0, 0);
  }
  if (matches) r.watermark.lookup_rows = lookup_rows(t, *conn_, counted_before(run, i));
  r.watermark.rejects_run = run.run_id;
  std::string reason =
      "logical: the " + std::to_string(list.size()) + " key(s) the desktop's write-ahead log names since the last run";
  if (matches) reason += ", and the rows of " + std::to_string(matches) + " changed lookup value(s)";
  if (read.empty()) reason = "logical: no change of its own; children of its parents' changed rows";
  r.method =
      delta::MethodChoice{delta::Method::Logical, reason, read.empty() ? "false" : pg::join(read, " OR "), false};
  return true;
}

ReconcileInput PostgresSource::reconcile_input(StageRun& run, size_t i, const TextSettings& settings) {
  const plan::TablePlan& t = run.plan.tables[i];
  TableRun& r = run.tables[i];
  const delta::MethodChoice& m = r.method;
  ReconcileInput in;
  in.method = m.method;
  in.table = r.sql.get();
  in.staging = r.staging.get();
  in.run_id = run.run_id;
  in.index = i;
  if (m.method == delta::Method::Cursor || m.method == delta::Method::Logical) {
    in.window = m.window;
    in.previous_run_id = r.previous_rejects;
  }
  if (m.method == delta::Method::Logical) in.listed = listed_arrays(lists_.at(i));
  in.estimated_rows = std::max<int64_t>(r.estimate, 0);
  in.rejects_carried = &r.carried_rejects;  // a stable element: the tables are sized before staging
  r.set_aside_kept = !in.previous_run_id.empty();  // (Reconciliation::defer_finish())
  for (const auto& ref : t.references) {
    const TableRun& parent = run.tables.at(ref.parent);
    if (!parent.sql) continue;
    // A child's fate under on_orphan: keep does not depend on its parent rows
    // (never set aside as an orphan, never refused): a parent's change gives
    // its rows nothing to judge again. Only the reported orphans_kept count
    // covers the rows this run reads, as it always does in an incremental run.
    if (ref.policy == config::OrphanPolicy::Keep) continue;
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
                            run.plan.tables[ref.parent].target.qualified_name() + " p WHERE EXISTS (SELECT 1 FROM " +
                            parent.sql->deletions() + " d WHERE " + parent.sql->same_key("d", "p") + "))");
  }
  if (m.lookup_drift) {
    auto prev = run.previous.find(t.target_name);
    auto headers = image_headers_.find(t.target_name);
    in.extra = std::make_shared<LookupImages>(
        t, *conn_, run.target,
        LookupImages::Run{run.run_id, i, prev == run.previous.end() ? "" : prev->second.second,
                          headers == image_headers_.end() ? std::map<int, LookupImages::Header>{} : headers->second,
                          settings, r.watermark.lookup_rows, &run.created, &r.record_sql, &r.method.reason});
  }
  return in;
}

}  // namespace stagesync::source::postgres
