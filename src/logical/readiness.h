// Is the desktop ready for logical capture, and what does the slot cost it?
//
// check_readiness() returns every problem with the line that fixes it (an
// empty list: ready). It never changes the server: it reads settings and the
// role in one query, loads the plugin's library when the role may (a
// superuser's LOAD; otherwise the plugin is proven when the slot is created),
// and opens one replication connection to see that the server accepts it.
// None of these is an error: a problem is a return value, for `check`.
//
// slot_status() is what a slot holds back on the desktop's disk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "logical/lsn.h"
#include "pg/connection.h"

namespace stagesync::logical {

struct ReadinessProblem {
  // wal_level, replication_role, slots_exhausted, wal_senders_exhausted,
  // plugin_missing, replication_refused (pg_hba.conf), replication_failed
  std::string code;
  std::string message;  // what is wrong, with the server's values
  std::string fix;      // the line to change or run, and whether a restart is needed
};

struct ReadinessOptions {
  std::string slot_name;  // a slot that already exists needs no free slot
  std::string plugin = "test_decoding";
  // Where to try a replication connection (the same database, user and
  // password as `conn`); empty conninfo: not tried.
  pg::Endpoint endpoint;
};

std::vector<ReadinessProblem> check_readiness(pg::Connection& conn, const ReadinessOptions& options);

struct SlotStatus {
  bool exists = false;
  bool active = false;  // a replication connection streams from it now
  std::string plugin;
  std::optional<Lsn> restart_lsn;          // the oldest WAL the slot holds
  std::optional<Lsn> confirmed_flush_lsn;  // where the next stream starts
  // pg_current_wal_insert_lsn() - restart_lsn: WAL kept for this slot. The
  // insert position, not pg_current_wal_lsn() (the write position), which
  // lags behind commits under synchronous_commit = off: this never under-counts.
  int64_t retained_bytes = 0;
  // reserved, extended, unreserved (about to be lost) or lost (invalidated)
  std::string wal_status;
  std::optional<int64_t> safe_wal_size;  // bytes left before max_slot_wal_keep_size invalidates it
  bool invalidated() const { return wal_status == "lost"; }
};

// One query. A missing slot is `exists == false`, not an error.
SlotStatus slot_status(pg::Connection& conn, const std::string& slot_name);

}  // namespace stagesync::logical
