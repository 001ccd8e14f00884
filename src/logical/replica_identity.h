// What the WAL carries for updates and deletes of each followed desktop
// table, and the one desktop change stagesync may make about it: REPLICA
// IDENTITY FULL, only as the explicit opt-in `follow: { replica_identity:
// full }` (decision 0011), which `check` and `plan` describe first.
//
// Nothing here runs unless called: read_identities() only reads;
// set_replica_identity_full() is the opt-in's one write, for the tables
// whose updates and deletes carry no old key. Neither can make the desktop
// application's statements fail (no publication is ever created: the
// test_decoding plugin needs none).
#pragma once

#include <string>
#include <vector>

#include "logical/change.h"
#include "pg/connection.h"

namespace stagesync::logical {

// What an update or delete of a table carries about the old row.
enum class OldRow {
  primary_key,  // the primary key's columns (updates: only when the key changed)
  index,        // REPLICA IDENTITY USING INDEX: that index's columns
  full_row,     // REPLICA IDENTITY FULL: every non-NULL column
  none,         // nothing: the follower reconciles the table's keys for that batch
};

struct TableIdentity {
  Relation relation;
  char replident = 'd';  // pg_class.relreplident: d(efault), f(ull), i(ndex), n(othing)
  OldRow old_row = OldRow::none;
  std::vector<std::string> key_columns;  // primary_key / index: the columns carried

  // One line for `check` and `plan`: what follow gets for this table, and
  // what the opt-in would change.
  std::string describe() const;
  // The opt-in's statement for this table; empty when it needs none.
  std::string opt_in_ddl() const;
};

// One query for all `tables`; a table that does not exist is left out.
std::vector<TableIdentity> read_identities(pg::Connection& conn, const std::vector<Relation>& tables);

// The opt-in: ALTER TABLE ... REPLICA IDENTITY FULL for every table whose
// old rows are `none`, in one round trip and one transaction. Each takes a
// brief ACCESS EXCLUSIVE lock (a catalog change; it rewrites nothing); a lock
// not granted within `lock_timeout_ms` (an application transaction holds the
// table) fails the whole statement with pg::Error 55P03, transient: retry
// later. The application never queues behind stagesync for longer than that.
// Returns the tables changed.
std::vector<Relation> set_replica_identity_full(pg::Connection& conn, const std::vector<TableIdentity>& tables,
                                                int lock_timeout_ms = 2000);

}  // namespace stagesync::logical
