// Mass-change protection: a desktop database being reinstalled, restored from
// an old backup, or read through the wrong connection string looks to a sync
// exactly like a mass deletion. Before anything is applied, each table's
// planned deletions are compared with what the target holds and with the last
// successful run; a tripped guard stops the run (nothing is changed) unless a
// person who checked passes --allow-mass-delete.
//
// Guards (defaults; override globally or per table under `guards:`):
//   allow_empty: false          a table whose owned rows would all disappear trips
//   max_delete_fraction: 0.2    deleting more than 20% of the owned in-scope rows trips,
//   min_deletes: 10             ... unless the deletions are no more than 10 rows
//   max_shrink_fraction: 0.5    the source row count fell by more than half since the last
//                               successful run (judged when that run read at least min_deletes rows)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/config.h"

namespace stagesync::guard {

struct Limits {
  double max_delete_fraction = 0.2;
  int64_t min_deletes = 10;
  double max_shrink_fraction = 0.5;
  bool allow_empty = false;
};

// Effective limits for a table: its own, else the global ones, else defaults.
Limits limits_for(const config::Guards& table, const config::Guards& global);

struct Facts {
  int64_t owned_before = 0;  // owned in-scope rows in the target before the run
  int64_t would_delete = 0;  // owned rows whose key (or whole row, keyless) is no longer in the source
  int64_t owned_after = 0;   // owned rows the table will hold after the run
  int64_t source_rows = 0;   // rows read from the source in this run
  std::optional<int64_t> previous_source_rows = std::nullopt;  // rows read by the last successful run
};

// The reason the run must stop for this table, or nullopt when it may proceed.
std::optional<std::string> judge(const Facts& facts, const Limits& limits);

// How many owned rows a run needs to count for judge() to reach the verdict
// the whole count would give, as an SQL expression of `would_delete` (an SQL
// bigint): 1 when would_delete is at most min_deletes (only emptiness
// matters), floor(would_delete / max_delete_fraction) + 1 otherwise (with
// that many the fraction is under the limit), NULL (all: LIMIT NULL) when the
// fraction limit is 0. A count that stops there is exact below it; at it the
// guard passes.
std::string owned_rows_needed_sql(const std::string& would_delete, const Limits& limits);

}  // namespace stagesync::guard
