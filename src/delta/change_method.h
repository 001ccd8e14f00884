// How one table's changes are found in an incremental run, and why.
//
//  cursor       rows whose version is newer than the last run's source snapshot
//               (changed_since()), plus key-set reconciliation for deletions
//  fingerprint  per-row fingerprints of the mapped rows, compared by buckets,
//               then by key in the buckets that differ (source::postgres::Reconciliation)
//  logical      the keys a record of the source's own changes names (the
//               desktop's logical decoding: source::KeyList), deletions among them
//  full         every row, as in --mode full
//
// choose_method() never fails: where an incremental method cannot be trusted
// it answers full and says why (the run summary shows it).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "apply/strategy.h"
#include "delta/watermark.h"
#include "plan/sync_plan.h"

namespace stagesync::delta {

enum class Method { Full, Cursor, Fingerprint, Logical };
std::string to_string(Method m);

struct MethodChoice {
  Method method = Method::Full;
  std::string reason;
  std::string window;  // cursor: the rows to read (alias t): the change window, or for
                       // keep-newest tables every row of a key with a changed row;
                       // logical: every row of a listed key
  // cursor: a table a lookup reads changed, so the rows whose stored lookup
  // value differs from the source's current one are read too (LookupImages).
  bool lookup_drift = false;
};

struct TableFacts {
  bool incremental_requested = false;
  apply::Strategy strategy = apply::Strategy::Merge;
  bool row_versions = true;           // the source relation has xmin (a table, not a view)
  bool fingerprints_match = true;     // both servers hash text alike (fingerprints comparable)
  std::optional<Watermark> previous;  // the table's watermark from its last successful run
  Watermark now;                      // this run's snapshot
  // Why the tables its lookups read may have changed since `previous`
  // (lookup_changes()); empty when they provably did not.
  std::string lookup_change;
};

// Whether every lookup's match columns are synced columns of the table, so
// the target's stored lookup values can be checked (LookupImages).
bool lookups_comparable(const plan::TablePlan& table);
// duplicates: { keep: newest } tables whose kept row the cursor method can
// follow by key digests of (key, greatest `by`): `by` of a type ordered alike
// on every server (numbers, dates, timestamps), neither it nor a key column
// looked up; not configured `incremental: { method: fingerprint }`. The others
// use fingerprints after their first run.
bool newest_by_digest(const plan::TablePlan& table);
MethodChoice choose_method(const plan::TablePlan& table, const TableFacts& facts);

}  // namespace stagesync::delta
