// The SQL a reverse run sends to each side, for one entry. Target side: what
// to copy down (changed or new mobile rows, and the keys the mobile side lost).
// Desktop side: a temporary table per entry (ON COMMIT DROP: nothing
// permanent), the judgement of every staged row against the desktop rows of
// the same key (set-based: one hash join, whatever the row count), the checks
// that refuse a value the desktop column cannot hold, and the writes, each
// recording what it wrote in the bookkeeping table pg_temp.stagesync_book.
//
// Actions (pg_temp table column `action`), judged from the staged row and the
// desktop rows with its key (n_key) and with its key and the desktop row hash
// reverse recorded (n_ours):
//   insert        new key, no desktop row has it
//   collision     new key, a desktop row reverse never wrote has it: reported, not inserted, retried each run
//   update        known key, its desktop row is as reverse wrote it
//   delete        mobile row gone, `deletes: propagate`, the desktop row is as reverse wrote it
//   keep-deleted  mobile row gone, `deletes: keep` (or a conflict the desktop wins): reported, left alone
//   forget        mobile row gone and no desktop row to delete (a retried collision, or deleted on both sides)
//   conflicts (the desktop row was edited or deleted on the desktop since reverse wrote it; always reported):
//   update-any / delete-any / insert   mobile-wins with exactly one desktop row of that key (or none)
//   keep-desktop  desktop-wins: the desktop row stays; the new mobile image is recorded (not reported again)
//   ambiguous     mobile-wins but several desktop rows have the key: left alone, reported
//   conflict-fail conflicts: fail: the run stops before any desktop write
#pragma once

#include <string>
#include <vector>

#include "reverse/reverse_plan.h"

namespace stagesync::reverse {

std::string temp_table(size_t n);
inline constexpr const char* kBookTable = "pg_temp.stagesync_book";

// Target: `SELECT ...` of the rows to stage (op, key, mobile_hash, desktop_hash, staged columns).
// `window` is a condition on alias t (its row version is newer than the last run's snapshot), or "true".
std::string staged_rows_sql(const EntryPlan& e, const std::string& window);

// Desktop: the temporary tables, function and settings of the transaction (plain statements, in order).
std::vector<std::string> desktop_setup(const std::vector<const EntryPlan*>& staged_entries);
std::string temp_ddl(const EntryPlan& e, size_t n);
std::string copy_in_sql(const EntryPlan& e, size_t n);

// Desktop: judges the staged rows (n_key, n_ours, action). Plain statements, in order.
std::vector<std::string> classify_sql(const EntryPlan& e, size_t n);
// Desktop: one row per refused value (column, reason, key, value) and the total count, at most 10 rows.
std::string refused_values_sql(const EntryPlan& e, size_t n);
// Desktop: the staged keys that appear twice (the cloud key is not unique), at most 5, with the count.
std::string duplicate_keys_sql(size_t n);
// Desktop: action, count, up to 3 example keys.
std::string action_counts_sql(size_t n);
// Desktop: how many staged rows judged to be written (or deleted) left no record in kBookTable: their
// desktop row changed between the judgement and the write (the application's own update).
std::string missed_writes_sql(const EntryPlan& e, size_t n);
// Desktop: the writes, each recording into kBookTable. In order.
std::vector<std::string> apply_sql(const EntryPlan& e, size_t n);

}  // namespace stagesync::reverse
