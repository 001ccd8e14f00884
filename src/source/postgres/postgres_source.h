// A PostgreSQL desktop database as a source (source::Source).
//
// Rows are read in one REPEATABLE READ READ ONLY transaction and passed
// through binary COPY, cast to the staging types by the source's SELECT
// (source_query.h), never decoded on the way (decision 0002). Incremental
// runs find changed rows by the source's own transaction ids (snapshot.h,
// decision 0004) and deletions by key digests (reconcile.h), or by row
// fingerprints where row versions cannot be trusted.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "config/config.h"
#include "delta/watermark.h"
#include "pg/connection.h"
#include "source/key_list.h"
#include "source/postgres/reconcile.h"
#include "source/source.h"
#include "source/stage_run.h"

namespace stagesync::source::postgres {

class PostgresSource : public Source {
 public:
  // `conn`: connected to the source (run::open_source() connects, refusing
  // a transaction-mode pooler). Applies the source settings of `cfg`.
  PostgresSource(std::unique_ptr<pg::Connection> conn, const config::Config& cfg);

  std::string describe() const override;
  catalog::Tables read_tables(const std::vector<std::string>& names) override;
  bool converts_values() const override { return false; }
  void before_run(pg::Pipeline& batch, bool incremental) override;
  void stage(StageRun& run) override;

  pg::Connection& connection() { return *conn_; }

  // Called right after a run's snapshot is taken, inside its read-only
  // transaction (the follower learns there which decoded transactions the
  // snapshot shows). For an incremental run it may answer each plan table's
  // KeyList, true as of that snapshot: the listed tables are read by key
  // (delta::Method::Logical); nullopt: the run chooses as without lists.
  using InSnapshot = std::function<std::optional<KeyLists>(pg::Connection&, const plan::SyncPlan&)>;
  // For `follow` (src/follow/): the next stage() reads the desktop in the
  // snapshot a new replication slot exported (`snapshot_name`, empty: a
  // snapshot of its own), and calls `in_snapshot` (if any) in it.
  void set_snapshot(std::string snapshot_name, InSnapshot in_snapshot);

 private:
  // Reads table `i`'s facts (method, watermark, row counts) and decides how
  // it is staged; returns the change window's rows (-1: not counted).
  int64_t choose(StageRun& run, size_t i, bool hashes_match);
  // choose(): whether table `i`'s counting scan is left to its key digests
  // (the statistics say it was written since the last run); if so its
  // watermark's row count is taken from them.
  bool counted_by_digests(StageRun& run, size_t i, const std::string& window, int64_t writes_before);
  // Table `i` read by the keys `list` names, or proved unchanged by it;
  // false (nothing decided) where the list cannot be used for it.
  bool choose_listed(StageRun& run, size_t i, const KeyList& list, std::string& why_not);
  // Incremental: what ReconcileBatch needs to complete table `i`'s staging
  // (and what references and lookups add).
  ReconcileInput reconcile_input(StageRun& run, size_t i, const TextSettings& settings);
  void stage_full(StageRun& run);
  void stage_incremental(StageRun& run, bool hashes_match);

  std::unique_ptr<pg::Connection> conn_;
  std::string target_text_hash_;  // the target's answer to the text hash probe (before_run())
  // The target's stored lookup images as the run began (before_run()): by
  // table, by lookup position, (signature, run_id).
  std::map<std::string, std::map<int, std::pair<std::string, std::string>>> image_headers_;
  delta::Watermark snapshot_;
  std::string snapshot_name_;
  InSnapshot in_snapshot_;
  KeyLists lists_;  // this run's, from in_snapshot_ (empty: none)
  std::set<std::string> plain_tables_;  // with lists: the tables decoded under their own name
};

}  // namespace stagesync::source::postgres
