// `stagesync follow`: keeps the target equal to the desktop at its latest
// batch boundary, batch by batch, from the desktop's logical decoding
// (decision 0012).
//
// A batch is a desktop snapshot: the decoded transactions that snapshot
// shows (a prefix of the slot's stream: no desktop transaction is ever
// split) are applied by an incremental sync read in that same snapshot, each
// table reading only the keys they name where the WAL says (ChangedKeys), and
// the end LSN of the last of them is written on the target in the sync's
// own transaction (stagesync.follow_state). Only after that COMMIT is the
// LSN confirmed to the slot. A crash anywhere re-reads from the recorded
// LSN; a batch applied twice changes nothing (a merge of the same snapshot).
//
// The first run (and a lost or too-large slot) creates the slot with an
// exported snapshot and takes a full sync in exactly that snapshot,
// recording the slot's consistent point.
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"
#include "pg/connection.h"
#include "report/reporter.h"
#include "report/run_summary.h"
#include "run/sync_run.h"

namespace stagesync::follow {

struct FollowOptions {
  double interval_seconds = 1.0;  // the most a committed desktop change waits before its batch starts
  bool once = false;              // catch up with the desktop's WAL as of the start, then return
  bool uninstall = false;         // drop the slot and the follow state, and return
  // The opt-in `follow: { replica_identity: full }`: ALTER TABLE ... REPLICA
  // IDENTITY FULL for the followed tables whose deletes carry no old key, and return.
  bool apply_replica_identity = false;
  double lock_wait_seconds = 0;
  // The WAL the slot may hold on the desktop's disk; beyond it the slot is
  // dropped and a full sync with a new slot follows (config follow.max_retained_wal).
  int64_t max_retained_wal = int64_t{1} << 30;
  // What each batch's sync starts from (mass-delete allowances); its mode,
  // snapshot, retries and records are the follower's.
  run::SyncOptions batch;
  // `sync --mode incremental` or `run` with `incremental: { capture: logical }`
  // (follow/capture.h): the tables not captured logically are read as
  // without key lists, and every batch reports its tables.
  bool capture = false;
};

// The slot of this target and scope: "stagesync_" and 8 hex digits of the
// target connection's database, host and port (never the password) and the scope.
std::string slot_name(const pg::Connection& target, const config::Config& cfg);

// Throws what run_sync() throws (CheckFailed, LockBusy, MassChangeRefused,
// DataRefused, pg::Error that is not transient or outlasted the retries,
// MetadataError), run::Refused for a SQLite desktop, pg::Interrupted when a
// second signal cancelled a batch (rolled back; the next start continues from
// the recorded LSN). Transient errors and a lost slot are handled inside.
//
// SIGINT/SIGTERM is a stop, not a failure: while waiting for WAL it returns at
// once; during a batch (or the first full sync, or a polled sync) the batch
// commits and its LSN is confirmed first (pg::DeferredStop). Either way it
// returns the summary (exit 0) after the line "stopped by signal after batch
// RUN; target at LSN".
report::RunSummary run_follow(const config::Config& cfg, const FollowOptions& options, report::Reporter& out);

}  // namespace stagesync::follow
