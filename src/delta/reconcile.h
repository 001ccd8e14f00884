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
//   - deletions: owned target keys the source no longer has (into `deletions`),
//   - rows to fetch: source keys the target lacks or holds with another
//     fingerprint, plus keys rejected by the table's previous run (they may
//     pass now, e.g. when their parent arrived); those rows are appended to the
//     staging table from the source, in the same snapshot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apply/table_sql.h"
#include "delta/change_method.h"
#include "pg/connection.h"
#include "stage/staging_table.h"

namespace stagesync::delta {

// Session settings that change how values print as text (and so their
// fingerprints), read from the source and applied to the target's
// reconciliation transaction.
struct TextSettings {
  std::vector<std::pair<std::string, std::string>> values;
};
TextSettings read_text_settings(pg::Connection& source);
// The statement whose answer both servers must agree on for hashes of text to be compared.
std::string text_hash_probe();

struct Reconciled {
  int64_t source_rows = 0;     // in-scope source rows with a key (the table's size at the source)
  int64_t rows_fetched = 0;    // rows appended to staging
  std::string deletions;       // the table of keys to delete (see deletions_table())
  int64_t deletion_count = 0;  // keys listed in it
  int64_t target_owned = -1;   // owned in-scope target rows before the run
  // Keys the previous run set aside, still set aside (not fetched): counted by
  // a statement deferred onto the target connection, written here once it ran
  // (ReconcileInput::rejects_carried says where).
};

// Creates the (empty) table of key values to delete for table `index` of run
// `run_id`, with the table's key columns; returns its name.
std::string deletions_table(pg::Connection& target, const apply::TableSql& table, const std::string& run_id,
                            size_t index);

struct ReconcileInput {
  Method method = Method::Cursor;
  const apply::TableSql* table = nullptr;  // staging holds the rows read so far (cursor: the change window)
  stage::StagingTable* staging = nullptr;
  std::string run_id;  // names the work tables (stage::work_table_name())
  size_t index = 0;
  // Cursor: the condition (alias t, on the source table) that selected the
  // rows already in staging. The digests compare the source rows outside it
  // with the owned target rows (and set-aside keys) whose key was not staged.
  std::string window;
  std::string previous_run_id;  // the table's last successful run (cursor: its rejects, see below), or empty
  // Cursor method: rows the previous run set aside never reach the target, so
  // they are counted as present on the target side of the digests (else they
  // would differ on every run) and carried into this run's `run_rejects`,
  // unless they may pass now: set aside for a reference while `retry_orphans`
  // (a table they reference staged rows in this run), or for a key collision
  // whose foreign target row is gone. Those are fetched and judged again.
  bool retry_orphans = false;
  std::string run_rejects;  // this run's reject table
  int64_t estimated_rows = 0;
  TextSettings settings;
  // More keys to fetch: SELECTs on the target yielding key tuples in staging
  // types (children of parent rows this run deletes, to be judged again).
  std::vector<std::string> also_fetch;
  // Children of rows a parent table staged in this run (new or changed
  // parents): their rows are read too, so rows set aside earlier for a missing
  // parent pass once it arrives. Parent staging table, parent columns, and this
  // table's referencing columns (same order).
  struct ParentRows {
    std::string staging;
    std::vector<std::string> parent_columns;
    std::vector<std::string> columns;
  };
  std::vector<ParentRows> children_of;
  // Where the count of carried set-aside keys is written when the target's
  // next message has run (it must outlive that; nullptr: not counted).
  int64_t* rejects_carried = nullptr;
};

// Runs inside the caller's source snapshot; uses its own transaction on the
// target (work tables persist). `created` receives every table it creates.
Reconciled reconcile(pg::Connection& source, pg::Connection& target, const ReconcileInput& in,
                     std::vector<std::string>& created);

}  // namespace stagesync::delta
