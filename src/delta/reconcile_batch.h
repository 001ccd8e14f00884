// Every changed table of an incremental run reconciled together: each phase
// of delta::Reconciliation runs for all tables at once, so the target round
// trips are a fixed number per phase, not per table (decision 0006):
//   1. digests: the target's (deferred work tables and digest queries) in one
//      pipeline, the source's computed meanwhile;
//   2. pairs: the differing buckets' (key, hash) pairs of every table (and
//      the lookup values drift is judged by) in one chained COPY;
//   3. wanted: every table's deletions and keys to fetch worked out, and
//      split into chunks, in one pipeline;
//   4. fetch: every table's wanted rows, then the children of rows its parents
//      staged, in one chained COPY. Children depend on their parents' staging
//      only through the source: a parent's staged rows are the SELECTs that
//      read them (its window, its fetched chunks, its own children), so a
//      child's read follows its parent's in the same chain.
// All of it is one target transaction (the text settings of the source, the
// hash planner settings), committed with the next message after run().
// The change windows are read into staging before (the caller's chain).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "delta/reconcile.h"
#include "pg/connection.h"

namespace stagesync::delta {

class ReconcileBatch {
 public:
  ReconcileBatch(pg::Connection& source, pg::Connection& target, TextSettings settings,
                 std::vector<std::string>& created);

  // Adds a table, parents before children (children_of names tables added
  // earlier). Its deletions table exists from here on (for children's also_fetch).
  const Reconciliation& add(ReconcileInput in);
  bool empty() const { return tables_.empty(); }

  // Runs every phase. The target's last statements (carried rejects,
  // ANALYZEs, COMMIT) are deferred: they travel with its next message.
  void run();

  // After run(): the table's result (by plan index).
  const Reconciled& result(size_t index) const { return by_index_.at(index)->result(); }

 private:
  void digests();

  pg::Connection& source_;
  pg::Connection& target_;
  TextSettings settings_;
  std::vector<std::string>& created_;
  std::vector<std::unique_ptr<Reconciliation>> tables_;  // in the order added
  std::map<size_t, Reconciliation*> by_index_;
};

}  // namespace stagesync::delta
