#include "guard/mass_change.h"

#include <cstdio>

namespace stagesync::guard {
namespace {

std::string percent(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", f * 100);
  return buf;
}

}  // namespace

Limits limits_for(const config::Guards& table, const config::Guards& global) {
  Limits l;
  l.max_delete_fraction = table.max_delete_fraction.value_or(global.max_delete_fraction.value_or(l.max_delete_fraction));
  l.min_deletes = table.min_deletes.value_or(global.min_deletes.value_or(l.min_deletes));
  l.max_shrink_fraction = table.max_shrink_fraction.value_or(global.max_shrink_fraction.value_or(l.max_shrink_fraction));
  l.allow_empty = table.allow_empty.value_or(global.allow_empty.value_or(l.allow_empty));
  return l;
}

std::optional<std::string> judge(const Facts& f, const Limits& l) {
  if (!l.allow_empty && f.owned_before > 0 && f.owned_after == 0) {
    return "would delete all " + std::to_string(f.owned_before) + " owned rows (the source side is empty" +
           (f.source_rows ? " after filtering" : "") + ")";
  }
  if (f.owned_before > 0 && f.would_delete > l.min_deletes) {
    double fraction = static_cast<double>(f.would_delete) / static_cast<double>(f.owned_before);
    if (fraction > l.max_delete_fraction) {
      return "would delete " + std::to_string(f.would_delete) + " of " + std::to_string(f.owned_before) +
             " owned rows (" + percent(fraction) + ", limit " + percent(l.max_delete_fraction) + ")";
    }
  }
  if (f.previous_source_rows && *f.previous_source_rows >= l.min_deletes && *f.previous_source_rows > 0) {
    double lost = 1.0 - static_cast<double>(f.source_rows) / static_cast<double>(*f.previous_source_rows);
    if (lost > l.max_shrink_fraction) {
      return "the source now has " + std::to_string(f.source_rows) + " rows, " + percent(lost) + " fewer than the " +
             std::to_string(*f.previous_source_rows) + " of the last successful run (limit " +
             percent(l.max_shrink_fraction) + ")";
    }
  }
  return std::nullopt;
}

std::string owned_rows_needed_sql(const std::string& would_delete, const Limits& l) {
  if (l.max_delete_fraction <= 0) return "NULL::bigint";
  char fraction[32];
  std::snprintf(fraction, sizeof fraction, "%.17g", l.max_delete_fraction);
  return "CASE WHEN " + would_delete + " <= " + std::to_string(l.min_deletes) + " THEN 1 ELSE floor(" + would_delete +
         " / " + fraction + "::float8)::bigint + 1 END";
}

}  // namespace stagesync::guard
