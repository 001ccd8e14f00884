// What a SQLite source's last successful run sent, kept on this machine: per
// table, the fingerprint of every key's rows (SQLite has no transaction ids
// to find changes by). An incremental run fingerprints every row again
// (locally: reading a local file is cheap; the network is what costs) and
// sends only the keys whose fingerprint differs, and the keys that vanished
// as deletions (docs/incremental.md).
//
// The cache is a SQLite file of its own (default: next to the configuration,
// `<config>.fingerprints`), never the desktop's. It is trusted for a table
// only when it was written for exactly the run the target records as that
// table's last success (stagesync.table_state.last_run_id) from this source
// file: any other run (from another machine, a restored target, a run whose
// cache update was lost) makes the table read in full once, which rebuilds it.
// Its writes for a run are held in one transaction, committed only after the
// target committed that run (commit()), so the cache never runs ahead of the
// target; a crash in between leaves it behind, which the run id check catches.
//
// Fingerprints are 62-bit: a key held by several rows (duplicates) gets the
// sum of its rows' fingerprints modulo 2^62, which SQLite's 64-bit integers
// compute without overflow and which does not depend on row order. A table
// without a key is one empty key whose fingerprint is the sum of every row's:
// it only proves the table unchanged (with the row count the target records).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <sqlite3.h>

namespace stagesync::source::sqlite_source {

class FingerprintCache {
 public:
  // Opens or creates the cache file. Throws std::runtime_error naming it.
  explicit FingerprintCache(const std::string& path);
  ~FingerprintCache();
  FingerprintCache(const FingerprintCache&) = delete;
  FingerprintCache& operator=(const FingerprintCache&) = delete;

  const std::string& path() const { return path_; }

  // Starts the run's pending changes (rolls back any earlier pending ones).
  void begin();
  // Whether `table`'s fingerprints were written for run `run_id` from `source`.
  bool valid_for(const std::string& table, const std::string& run_id, const std::string& source);

  // A full read of `table`: its fingerprints start empty, then add() each row.
  void reset(const std::string& table);
  void add(const std::string& table, const std::string& key, int64_t fingerprint);

  // Incremental comparison of `table`: scan() each row into the current
  // fingerprints, then compare(): wanted() then answers whether a key's rows
  // differ from the last run's (new or changed), and deleted() lists keys the
  // last run had that are gone. record_changes() makes the current
  // fingerprints of the compared table the pending ones.
  void start_scan();
  void scan(const std::string& key, int64_t fingerprint);
  struct Difference {
    int64_t wanted = 0;   // keys new or changed
    int64_t deleted = 0;  // keys gone
  };
  // The differences are kept per table until begin(): several tables'
  // comparisons may be read back later in the run.
  Difference compare(const std::string& table);
  bool wanted(const std::string& table, const std::string& key);
  // Calls `f(key)` for each deleted key `table`'s compare() found.
  template <class F>
  void deleted(const std::string& table, F&& f) {
    for_each_deleted(
        table, [](void* ctx, const char* key, int n) { (*static_cast<F*>(ctx))(std::string(key, n)); }, &f);
  }
  void record_changes(const std::string& table);

  // Values of a reference's parent columns (COPY text fields joined by tabs)
  // whose children are read again in this run: parents sent, or deleted.
  // `reference` numbers the reference within the run.
  void add_parent_value(int reference, const std::string& values);
  bool parent_value(int reference, const std::string& values);

  // The digest of the table's stored values (stored_digest.h) recorded with
  // its fingerprints ("" when none), and the one this run records.
  std::string digest(const std::string& table);
  void set_digest(const std::string& table, const std::string& digest);

  // The pending fingerprints belong to run `run_id` (from `source`) for
  // `table`: recorded by commit().
  void mark(const std::string& table, const std::string& run_id, const std::string& source);
  // Commits the pending changes (after the target committed the run).
  void commit();
  // Drops them (the run failed, or was a plan or verify).
  void rollback() noexcept;

 private:
  void exec(const std::string& sql);
  void for_each_deleted(const std::string& table, void (*f)(void*, const char*, int), void* ctx);
  sqlite3_stmt* prepare(const std::string& sql);

  std::string path_;
  sqlite3* db_ = nullptr;
  bool open_ = false;  // a pending transaction is open
  struct Statements;
  std::unique_ptr<Statements> st_;
};

}  // namespace stagesync::source::sqlite_source
