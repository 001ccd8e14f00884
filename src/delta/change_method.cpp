#include "delta/change_method.h"

#include <algorithm>
#include <iterator>
#include <vector>

#include "pg/sql.h"

namespace stagesync::delta {

bool lookups_comparable(const plan::TablePlan& t) {
  for (const auto& l : t.lookups)
    for (const auto& m : l.match)
      if (!t.column(m)) return false;
  return true;
}

bool newest_by_digest(const plan::TablePlan& t) {
  if (!t.duplicates.keep_newest || (t.config && t.config->incremental.method == "fingerprint")) return false;
  const plan::StagedColumn* by = t.column(t.duplicates.by);
  if (!by || by->lookup >= 0) return false;
  for (const auto& k : t.key)
    if (!t.column(k) || t.column(k)->lookup >= 0 || k == by->name) return false;
  // Ordered the same way by every server, and rounded monotonically into the
  // target's type: the greatest value in the target's type is the target's
  // rounding of the staging's greatest (text would order by collations).
  static const char* const kOrdered[] = {"int2",   "int4", "int8",      "numeric",    "float4",
                                         "float8", "date", "timestamp", "timestamptz"};
  return by->target.builtin_type && std::any_of(std::begin(kOrdered), std::end(kOrdered), [&](const char* type) {
           return by->target.base_type == pg::qualified("pg_catalog", type);
         });
}

std::string to_string(Method m) {
  switch (m) {
    case Method::Full: return "full";
    case Method::Cursor: return "cursor";
    case Method::Fingerprint: return "fingerprint";
    case Method::Logical: return "logical";
  }
  return "full";
}

MethodChoice choose_method(const plan::TablePlan& t, const TableFacts& f) {
  auto full = [](std::string why) { return MethodChoice{Method::Full, std::move(why), {}, false}; };
  if (!f.incremental_requested) return full("full mode requested");
  if (f.strategy != apply::Strategy::Merge) {
    return full("strategy " + apply::to_string(f.strategy) + " rewrites every owned row");
  }
  if (!t.keyed()) return full("key: none: rows have no identity to follow between runs, compared whole");
  if (!f.fingerprints_match) {
    return full("the source and target servers hash text differently, so fingerprints cannot be compared");
  }
  const config::Table& cfg = *t.config;
  std::string why_fingerprint;
  if (cfg.incremental.method == "fingerprint") {
    why_fingerprint = "incremental: { method: fingerprint } configured";
  } else if (t.duplicates.keep_newest && f.previous && !newest_by_digest(t)) {
    // Deleting the newest row of a key leaves no row version, and the key
    // remains: only the kept row's values show that another row is kept now.
    why_fingerprint = "duplicates: keep newest by " + t.duplicates.by +
                      " (the kept row of a key changes when its newest row is deleted; only a number, date or "
                      "timestamp read from the table, under a key read from it, is compared per key)";
  } else if (t.duplicates.keep_newest && f.previous && f.previous->ties != 0) {
    // The key digests see a deleted newest row by the key's greatest `by`,
    // which stays the same when a row tied with it remains: only the kept
    // row's values would show it.
    why_fingerprint = std::string("duplicates: keep newest, and ") +
                      (f.previous->ties > 0 ? "the last run's source held rows of one key with equal "
                                            : "the last run did not record whether the source held equal ") +
                      t.duplicates.by + " values";
  } else if (!f.row_versions) {
    why_fingerprint = "the source relation has no row versions (a view or foreign table)";
  } else if (!t.lookups.empty() && f.previous && !f.lookup_change.empty() && !lookups_comparable(t)) {
    why_fingerprint = f.lookup_change + " (and its match columns are not synced, so stored values cannot be compared)";
  }
  if (!why_fingerprint.empty()) {
    return MethodChoice{Method::Fingerprint, "fingerprints: " + why_fingerprint, {}, false};
  }
  if (!f.previous) return full("no watermark from an earlier successful run yet; this run records one");
  std::string why;
  std::optional<std::string> window = changed_since(*f.previous, f.now, why);
  if (!window) return full(why);
  std::string reason = "cursor: row versions newer than the last run's source snapshot, deletions by key set";
  if (t.duplicates.keep_newest && *window != "false") {
    // The newest row of a key can only be chosen among all its rows: every
    // row sharing a key with a changed one is read (the inner alias t is the
    // subquery's own source table).
    std::vector<std::string> keys;
    for (const auto& k : t.key) keys.push_back("t." + pg::ident(k));
    window = "(" + pg::join(keys, ", ") + ") IN (SELECT " + pg::join(keys, ", ") + " FROM " +
             t.source.qualified_name() + " t WHERE (" + *window + "))";
    reason += "; duplicates: keep newest: every row of a changed key is read, and each key's greatest " +
              t.duplicates.by + " is compared with the kept row's";
  }
  bool drift = !t.lookups.empty() && !f.lookup_change.empty();
  if (drift) reason += "; " + f.lookup_change + ": rows whose lookup value differs now are read too";
  if (!cfg.incremental.cursor.empty()) reason += " (" + cfg.incremental.cursor + " alone is not trusted)";
  return MethodChoice{Method::Cursor, reason, *window, drift};
}

}  // namespace stagesync::delta
