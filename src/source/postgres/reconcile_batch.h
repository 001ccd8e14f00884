// Every table an incremental run reconciles, reconciled together: each phase
// of delta::Reconciliation runs for all tables at once, so a phase costs the
// same target round trips whatever the number of tables, apart from one per
// table in the fetch's chained COPY (decision 0006):
//   1. digests: the target's (work tables, set-aside keys, digest queries) in
//      one pipeline, the source's computed meanwhile: 1 round trip (none when
//      every table is read by a key list: its statements go with phase 3);
//   2. pairs: the differing buckets' (key, hash) pairs of every table in one
//      COPY (keys as text, moved into each table's pairs table in the same
//      message), plus a chained COPY per lookup whose drift is judged: 2;
//   3. wanted: every table's deletions and keys to fetch worked out, and split
//      into chunks, in one pipeline: 1;
//   4. fetch: per table one read of its wanted keys and of the children of
//      rows its parents staged, every table's in one chained COPY: 1 + tables.
// Children depend on their parents' staging only through the source: a
// parent's staged rows are the SELECTs that read them (its change window, its
// fetch), so a child's read is built from them and follows its parent's in
// the same chain, without waiting for the target.
// All of it is one target transaction (the source's text settings, the
// planner settings of the digests), committed with the target's next message
// after run(). The change windows are read into staging before (the caller's
// chain): the digests set the staged rows apart.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "source/postgres/reconcile.h"
#include "pg/connection.h"

namespace stagesync::source::postgres {

class ReconcileBatch {
 public:
  ReconcileBatch(pg::Connection& source, pg::Connection& target, TextSettings settings,
                 std::vector<std::string>& created);

  // Adds a table, parents before children (children_of names tables added
  // earlier). Its deletions table exists from here on (for children's also_fetch).
  const Reconciliation& add(ReconcileInput in);
  bool empty() const { return tables_.empty(); }

  // Runs every phase. The target's last statements (released set-aside keys,
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

}  // namespace stagesync::source::postgres
