// A table's stored values, digested without converting them: the count of
// its in-scope rows and the sum of a 64-bit hash of each row's raw values
// (storage class and bytes of every column the sync reads), with the same
// of every lookup table it reads, and the shape of the read (its SQL, the
// target types, the time zone). Equal digests mean the rows a run would send
// are the same as the last run's, so a table can be proved unchanged by one
// plain scan, without converting, fingerprinting or comparing a key (the
// common case of an unattended run every few minutes). Different digests
// prove nothing: the row fingerprints decide (fingerprint_cache.h).
#pragma once

#include <map>
#include <string>

#include "plan/sync_plan.h"
#include "sqlite/database.h"

namespace stagesync::source::sqlite_source {

class StoredDigest {
 public:
  explicit StoredDigest(sqlite::Database& db, std::string timezone) : db_(db), timezone_(std::move(timezone)) {}
  // The digest of `table` in the open snapshot (as text, compared for equality only):
  // "<shape>/<rows>:<sum>|<lookup tables' rows:sum>...".
  std::string of(const plan::TablePlan& table);
  // The digest's "<shape>/" prefix alone (no scan): what the sync reads of the table, and how.
  std::string shape(const plan::TablePlan& table) const;
  // The in-scope rows the last of() counted in the table itself.
  int64_t rows() const { return rows_; }

 private:
  // count:sum of the raw rows of `select` (`scoped`: with the table's scope
  // bound), memoized (a lookup table is read once per run).
  std::string rows(const std::string& select, const plan::TablePlan* scoped = nullptr);

  sqlite::Database& db_;
  std::string timezone_;
  std::map<std::string, std::string> memo_;
  int64_t rows_ = 0;
  uint64_t counted_ = 0;  // rows of the last rows() call
};

}  // namespace stagesync::source::sqlite_source
