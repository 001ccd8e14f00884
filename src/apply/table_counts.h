// What a run did to one table.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace stagesync::apply {

struct TableCounts {
  int64_t read = 0;                // rows streamed from the source into staging
  int64_t inserted = 0;
  int64_t updated = 0;
  int64_t deleted = 0;
  int64_t rejected = 0;            // set aside: NULL key, skipped orphan, key collision
  int64_t orphans_kept = 0;        // synced although their parent is missing (on_orphan: keep)
  int64_t duplicates_dropped = 0;  // older rows of a duplicated key (duplicates: keep newest)
  int64_t collisions = 0;          // of `rejected`: keys taken by rows the sync does not own
  int64_t preserved = 0;           // rows in the target the sync does not own (left untouched)
  // duplicates: keep newest: whether two staged rows of one key hold equal
  // `by` values as the target stores them (1) or not (0); -1: not judged.
  // Complete only where every in-scope source row was staged (a full read).
  int64_t newest_ties = -1;
  double seconds = 0;
};

// The source data cannot be applied as configured (duplicate keys with
// `duplicates: fail`, orphans with `on_orphan: fail`, values the target
// refuses), or the deletions the run needs would reach rows the sync does not
// own (a foreign key from another table: merge's vanished rows under ON DELETE
// CASCADE / SET NULL / SET DEFAULT, any such key or referencing rows for swap).
// Raised before anything is committed; the run changes nothing. Exit code 5.
class DataRefused : public std::runtime_error {
 public:
  DataRefused(std::string table, std::string message)
      : std::runtime_error("table " + table + ": " + message), table_(std::move(table)) {}
  const std::string& table() const { return table_; }

 private:
  std::string table_;
};

}  // namespace stagesync::apply
