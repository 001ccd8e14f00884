// Session: what every command that moves data shares. Opens both
// connections, resolves the configuration (failing with CheckFailed before any
// write), takes the run lock, prepares the metadata schema, cleans what a
// crashed run left, and streams the selected tables into staging tables inside
// one source snapshot.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apply/strategy.h"
#include "apply/table_sql.h"
#include "config/config.h"
#include "delta/change_method.h"
#include "pg/connection.h"
#include "pg/pipeline.h"
#include "plan/sync_plan.h"
#include "report/reporter.h"
#include "run/kept_target.h"
#include "run/pooler_check.h"
#include "source/source.h"
#include "source/stage_run.h"
#include "source/table_run.h"
#include "stage/staging_table.h"

namespace stagesync::run {

struct SessionOptions {
  std::vector<std::string> tables;  // --tables
  double lock_wait_seconds = 0;
  // Called with the source once it is open, before anything is read (`follow`
  // sets its PostgreSQL source's snapshot there: src/follow/). Throws to refuse the source.
  std::function<void(source::Source&)> configure_source;
  // `follow`: the target session and plan kept from the follower's previous
  // batch (taken by open() when usable, handed back by keep() after a
  // successful run; run/kept_target.h). nullptr: every run connects and resolves.
  KeptTarget* keep = nullptr;
};

// Connects; errors name the side ("source: cannot connect: ...").
// Unless `check_session` is false, refuses (Refused) a connection through a
// transaction-mode pooler (run/pooler_check.h).
std::unique_ptr<pg::Connection> connect_side(const std::string& side, const pg::Endpoint& endpoint,
                                             bool check_session = true);
pg::Endpoint source_endpoint(const config::Config& cfg);
pg::Endpoint target_endpoint(const config::Config& cfg);
// The source `cfg` names (`source: { url }` or `source: { sqlite }`),
// connected or opened: the one place that knows every kind of source.
std::unique_ptr<source::Source> open_source(const config::Config& cfg);

class Session {
 public:
  Session(const config::Config& cfg, const SessionOptions& options, report::Reporter& out);

  // Connects, resolves and validates. Throws CheckFailed listing every problem.
  void open();
  // Takes the run lock (LockBusy), ensures metadata, drops crash leftovers,
  // and records a run row with status 'running'. Returns the run id.
  std::string begin_run(const std::string& command, const std::string& mode, const std::string& strategy);
  // Streams every selected table into its staging table (one consistent
  // state of the source, source::Source::stage()). With `incremental`, the
  // source reads only what changed where it can tell (TableRun::method).
  void stage_selected(bool incremental = false, apply::Strategy strategy = apply::Strategy::Merge);
  // The run's target transaction committed (tells the source, best effort).
  void committed() noexcept;
  // After a successful run: hands the target session (with its run lock) and
  // the plan to SessionOptions::keep, when set and the session is the one that
  // took the lock. The session has no target connection afterwards.
  void keep() noexcept;

  // BEGIN on the target. Each table's statements in the transaction are
  // preceded by planner_regime().
  void begin();
  // Adds to `p`, when it differs from the one in force in the transaction,
  // the planner setting for table `index`'s statements (judging, applying):
  // - many rows (a full read, or more than kSmallStagedRows staged and listed
  //   for deletion): set-based joins of whole tables, never nested loops (an
  //   analysed-empty target table would otherwise make an INSERT ... NOT
  //   EXISTS quadratic);
  // - few rows (an incremental read of fewer): index lookups into the large
  //   target tables rather than a hash of each of them. The default cost of a
  //   random page (4, a disk seek) makes the planner hash whole tables, several
  //   times slower for a few thousand rows of tables that are cached.
  // Chosen per table: one table read whole (a keyless table) leaves the
  // others' few rows to index lookups. No round trip: the setting travels in `p`.
  void planner_regime(pg::Pipeline& p, size_t index);
  // Replaces a lost target connection (the run lock went with the old session).
  void reconnect_target();
  // Marks the run failed (best effort) and drops staging tables (best effort).
  void fail(const std::string& error) noexcept;
  // Drops this run's staging tables.
  void drop_staging() noexcept;
  // Adds the drops to `batch`, after its COMMIT (best effort), and the
  // pruning of old run records (state/history.h). Once the batch
  // has run, staging_dropped() tells drop_staging() there is nothing left to do;
  // when it did not (the connection was lost), drop_staging() reconnects and drops.
  void drop_staging_after(pg::Pipeline& batch);
  void staging_dropped();

  source::Source& source() { return *source_; }
  pg::Connection& target() { return *target_; }
  // The application_name of stagesync's target sessions (to recognise its own server sessions).
  std::string application_name() const;
  const plan::SyncPlan& plan() const { return plan_; }
  const std::string& run_id() const { return run_id_; }
  const std::string& rejects_table() const { return rejects_; }
  // Index-aligned with plan().tables; nullptr for tables not staged.
  const std::vector<const apply::TableSql*>& staged() const { return staged_ptrs_; }
  std::vector<const plan::TablePlan*> plans() const;
  const source::TableRun& table(size_t index) const { return tables_.at(index); }
  int64_t rows_read(size_t index) const { return tables_.at(index).rows_read; }
  // In-scope source rows of the table in this run's snapshot (all of them, even when fewer were read).
  int64_t source_rows(size_t index) const { return tables_.at(index).source_rows; }
  const delta::MethodChoice& method(size_t index) const { return tables_.at(index).method; }
  // Owned in-scope target rows counted while reconciling (-1: not counted).
  int64_t target_owned(size_t index) const { return tables_.at(index).target_owned; }
  // The table provably did not change at the source since its last run
  // (incremental): it has nothing to prepare, guard or apply.
  bool unchanged(size_t index) const { return tables_.at(index).unchanged; }
  // Keys the previous run set aside that stay set aside without being read again.
  int64_t carried_rejects(size_t index) const { return tables_.at(index).carried_rejects; }
  bool set_aside_kept(size_t index) const { return tables_.at(index).set_aside_kept; }
  // Sets the `ties` of the table's watermark (delta::Watermark::ties): judged
  // on the target where the source read did not (apply::TableCounts::newest_ties).
  void record_ties(size_t index, int64_t ties) { tables_.at(index).watermark.ties = ties; }
  // The watermark a successful run records for the table (its snapshot).
  std::string watermark_json(size_t index) const;
  double stage_seconds(size_t index) const { return tables_.at(index).stage_seconds; }

 private:
  void configure_target();
  // Whether a key that table `index`'s current rejects run set aside for a collision is free now
  // (a statement taking the table's target name, batched by begin_run()).
  std::string collision_freed_sql(size_t index) const;

  const config::Config& cfg_;
  SessionOptions options_;
  report::Reporter& out_;
  std::unique_ptr<source::Source> source_;
  std::unique_ptr<pg::Connection> target_;
  SessionMark session_mark_;    // the target's server session, checked by begin_run()
  bool kept_ = false;           // target_ came from SessionOptions::keep: it holds the run lock already
  bool check_catalog_ = false;  // plan_ came from SessionOptions::keep: begin_run() checks target_catalog_
  bool holds_lock_ = false;     // target_ is the session that took the run lock
  plan::SyncPlan plan_;
  catalog::Tables source_tables_;  // what plan_ was resolved from (plan::Resolution)
  std::string target_catalog_;
  std::string run_id_;
  std::string rejects_;
  std::vector<source::TableRun> tables_;  // index-aligned with plan_.tables
  std::vector<const apply::TableSql*> staged_ptrs_;
  std::vector<std::string> created_;  // every staging table this run created (until dropped)
  bool rejects_dropped_ = false;
  static constexpr int64_t kSmallStagedRows = 100000;
  enum class Regime { ServerDefault, FewRows, ManyRows };
  Regime regime_ = Regime::ServerDefault;  // in force in the open transaction (begin(), planner_regime())
  // Read by begin_run() in its batch, for stage_selected():
  std::map<std::string, std::pair<std::string, std::string>> previous_;  // table -> (watermark, last run)
};

// The lock key: target database and scope (runs with different scopes may run together).
std::string scope_key(const config::Config& cfg);

}  // namespace stagesync::run
