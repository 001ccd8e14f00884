#include "delta/change_method.h"


namespace stagesync::delta {

bool lookups_comparable(const plan::TablePlan& t) {
  for (const auto& l : t.lookups)
    for (const auto& m : l.match)
      if (!t.column(m)) return false;
  return true;
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
  } else if (t.duplicates.keep_newest && f.previous) {
    // Deleting the newest row of a key leaves no row version, and the key
    // remains: only the kept row's values show that another row is kept now.
    why_fingerprint = "duplicates: keep newest (the kept row of a key changes when its newest row is deleted)";
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
  bool drift = !t.lookups.empty() && !f.lookup_change.empty();
  if (drift) reason += "; " + f.lookup_change + ": rows whose lookup value differs now are read too";
  if (!cfg.incremental.cursor.empty()) reason += " (" + cfg.incremental.cursor + " alone is not trusted)";
  return MethodChoice{Method::Cursor, reason, *window, drift};
}

}  // namespace stagesync::delta
