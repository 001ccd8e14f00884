// Key-set and fingerprint reconciliation between the source (in the run's
// snapshot) and the target's owned rows, moving little more than what differs.
//
// Both servers hash each row (the key for the cursor method, as numbers when
// it is made of integers; key and compared columns as text for fingerprints)
// and sum the hashes per bucket, in one pass each, at the same time; only the
// bucket digests cross the network. Cursor method: the rows the change window
// already staged are set apart on both sides. Only buckets whose digests
// differ are looked at again: their (key, hash) pairs come over from the
// source, and the target works out
//   - deletions: owned target keys the source no longer has (into `deletions`;
//     the logical method lists its listed keys not staged, unprobed),
//   - rows to fetch: source keys the target lacks or holds with another
//     fingerprint, plus keys currently set aside that may pass now (e.g. when
//     their parent arrived); those rows are appended to the staging table from
//     the source, in the same snapshot.
// One table's reconciliation is a Reconciliation, one step per phase; a
// ReconcileBatch (delta/reconcile_batch.h) runs each phase for every changed
// table at once, so its round trips do not grow with the number of tables.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apply/table_sql.h"
#include "delta/change_method.h"
#include "delta/deletions.h"
#include "pg/connection.h"
#include "stage/copy_chain.h"
#include "stage/staging_table.h"

namespace stagesync::source::postgres {

// Session settings that change how values print as text (and so their
// fingerprints), read from the source and applied to the target's
// reconciliation transaction.
struct TextSettings {
  std::vector<std::pair<std::string, std::string>> values;
};
TextSettings read_text_settings(pg::Connection& source);
// The statement whose answer both servers must agree on for hashes of text to be compared.
std::string text_hash_probe();

// "SELECT CAST(u.a0 AS <types[0]>), ... FROM unnest(...)": the key tuples
// `arrays` lists (one text[] value in array syntax per column, pg::text_array();
// position i of each the i-th key), each value cast to `types` (by position).
std::string keys_select(pg::Connection& conn, const std::vector<std::string>& types,
                        const std::vector<std::string>& arrays);
// "(<matched>) IN (SELECT ... FROM unnest(...))": the condition that a row's
// key expressions `matched` are one of the keys `arrays` lists (one text[]
// value in array syntax per column, pg::text_array(); position i of each the
// i-th key), each value cast to `types` (by position). `conn` quotes.
std::string keys_in(pg::Connection& conn, const std::vector<std::string>& matched,
                    const std::vector<std::string>& types, const std::vector<std::string>& arrays);

// A bucket's count and the sums of two halves of its rows' 64-bit hashes
// (bits 32-63 and 0-30): digests of disjoint sets add up.
struct BucketDigest {
  int64_t rows = 0;
  int64_t high = 0;
  int64_t low = 0;
  bool operator==(const BucketDigest& o) const { return rows == o.rows && high == o.high && low == o.low; }
  BucketDigest& operator+=(const BucketDigest& o) {
    rows += o.rows;
    high += o.high;
    low += o.low;
    return *this;
  }
};
using BucketDigests = std::map<int, BucketDigest>;

struct Reconciled {
  int64_t source_rows = 0;     // in-scope source rows with a key (the table's size at the source)
  int64_t rows_fetched = 0;    // rows appended to staging
  std::string deletions;       // the table of keys to delete (see delta::deletions_table())
  int64_t deletion_count = 0;  // keys listed in it
  int64_t target_owned = -1;   // owned in-scope target rows before the run
  int64_t ties = -1;           // cursor, keep newest: delta::Watermark::ties of this snapshot (newest_keys())
  // Keys set aside earlier, still set aside (not fetched): counted by
  // a statement deferred onto the target connection, written once it ran
  // (ReconcileInput::rejects_carried says where).
};

// Work for more than the table's keys done in a reconciliation's phases (the
// stored image of its lookups, lookup_image.h): target statements deferred
// with the digests, source statements while the target answers, copies
// with the pairs (both answers known), then more keys to fetch.
class ReconcileExtra {
 public:
  virtual ~ReconcileExtra() = default;
  virtual void defer_target() = 0;
  virtual void source() = 0;
  virtual std::vector<stage::CopyChain::Copy> copies() = 0;
  virtual std::vector<std::string> also_fetch() = 0;
};

struct ReconcileInput {
  delta::Method method = delta::Method::Cursor;
  const apply::TableSql* table = nullptr;  // staging holds the rows read so far (cursor: the change window)
  stage::StagingTable* staging = nullptr;
  std::string run_id;  // names the work tables (stage::work_table_name())
  size_t index = 0;
  // Cursor: the condition (alias t, on the source table) that selected the
  // rows already in staging. The digests compare the source rows outside it
  // with the owned target rows (and set-aside keys) whose key was not staged.
  std::string window;
  // The SELECTs (on the source, staged columns) whose rows are in staging
  // already (the change window's read), for the children of this table's rows.
  std::vector<std::string> staged;
  std::string previous_run_id;  // the table's last successful run (cursor, logical: see below), or empty
  // Logical method: the listed keys (text[] values per key column, see
  // keys_in()). No digests: the listed keys the staged rows do not hold are
  // the deletions (when the target owns them); the rows of the other keys
  // did not change. Set-aside keys are kept as for the cursor method.
  std::vector<std::string> listed;
  // Cursor (and logical) method, with an earlier run: rows currently set aside
  // (stagesync.set_aside) never reach the target, so they are counted as
  // present on the target side of the digests (else they would differ on
  // every run) and stay set aside where they are (decision 0016), unless they
  // are read again or gone (then listed in the run's released table,
  // stage::released_table()), or may pass now: set aside for a reference while `retry_orphans`
  // (a table they reference staged rows in this run), or for a key collision
  // whose foreign target row is gone. Those are fetched and judged again.
  bool retry_orphans = false;
  int64_t estimated_rows = 0;
  // More keys to fetch: SELECTs on the target yielding key tuples in staging
  // types (children of parent rows this run deletes, to be judged again; rows
  // whose lookup drifted). They may read tables that `copies` fill.
  std::vector<std::string> also_fetch;
  // Work tables `also_fetch` reads, filled from the source with the
  // differing buckets' pairs (before the keys to fetch are worked out).
  std::vector<stage::CopyChain::Copy> copies;
  // Cursor: more of the same, whose statements depend on what the digests' phase found.
  std::shared_ptr<ReconcileExtra> extra;
  // Children of rows a parent table staged in this run (new or changed
  // parents): their rows are read too, so rows set aside earlier for a missing
  // parent pass once it arrives. The parent (its plan index, reconciled in the
  // same batch), its columns, and this table's referencing columns (same order).
  struct ParentRows {
    size_t parent = 0;
    std::vector<std::string> parent_columns;
    std::vector<std::string> columns;
  };
  std::vector<ParentRows> children_of;
  // Where the count of set-aside keys kept without being read is written when the target's
  // next message has run (it must outlive that; nullptr: not counted).
  int64_t* rejects_carried = nullptr;
};

// One table's reconciliation, one step per phase. Runs inside the caller's
// source snapshot and inside the target transaction the batch opened (work
// tables persist). Every target statement is deferred or part of a chain the
// caller runs; the source statements run at once (the source is near).
class Reconciliation {
 public:
  // Creates (deferred) the table's deletions table; `created` receives every table it creates.
  Reconciliation(pg::Connection& source, pg::Connection& target, ReconcileInput in, std::vector<std::string>& created);
  Reconciliation(const Reconciliation&) = delete;
  Reconciliation& operator=(const Reconciliation&) = delete;

  const ReconcileInput& input() const { return in_; }
  const Reconciled& result() const { return out_; }

  // Digests. Deferred on the target: the work tables, the set-aside keys, and
  // the digest query (its answer is kept when the message has run).
  void defer_target_digests();
  // The source's digests (runs now).
  void source_digests();
  // Compares the digests. Where buckets differ, the source's (key, hash)
  // pairs of those buckets are to cross into the table's pairs table: all
  // tables' in one COPY (ReconcileBatch), read by pairs_select() as (tag,
  // key values as text, hash) and moved on the target from that COPY's table
  // `bundle` by pairs_fill() (the keys cast back, as the fetch's chunks do).
  void compare();
  bool differs() const { return !pairs_.empty(); }
  std::string pairs_select(int tag) const;
  std::vector<std::string> pairs_fill(const std::string& bundle, int tag) const;
  // The copies filling the work tables input().also_fetch reads (run with the pairs).
  std::vector<stage::CopyChain::Copy> take_copies();
  // Deferred: the deletions, the keys to fetch, the deletions' count, and the
  // query that splits the keys to fetch into chunks.
  void defer_wanted();
  // The rows to fetch (the wanted keys, and the children of the parents'
  // staged rows: their SELECTs by position of input().children_of) to
  // `chain`, one copy for the table.
  void fetch(stage::CopyChain& chain, const std::vector<std::vector<std::string>>& parents_staged);
  // SELECTs (on the source, staged columns) covering every row staged in this
  // run (a few more when the source holds a key twice).
  const std::vector<std::string>& staged() const { return in_.staged; }
  // Deferred, once the fetch ran: the set-aside keys released (read again or
  // gone) and the count of those kept, the deletions' ANALYZE.
  void defer_finish();

 private:
  pg::Connection& source_;
  pg::Connection& target_;
  ReconcileInput in_;
  std::vector<std::string>& created_;
  Reconciled out_;
  std::string want_, known_, pairs_;
  std::vector<int> differing_;
  BucketDigests ours_, theirs_;
  int64_t newest_rows_ = 0;          // keep newest: the source rows of the keys the digests counted
  std::vector<std::string> wanted_;  // the chunks' key SELECTs (defer_wanted())
  bool by_text_ = false;             // logical: set-aside rows found by their key's text (defer_target_digests())

  // Logical method, on the target: the listed keys (typed, one row each), and
  // the condition that alias's key is one of them.
  std::string listed_select() const;
  std::string listed(const std::string& alias) const;
};

}  // namespace stagesync::source::postgres
