// The reverse sync's bookkeeping in the target's `stagesync` schema
// (decision 0008). The desktop gets nothing permanent: what reverse sync
// copied, and what it wrote, is recorded here.
//
//   reverse_rows          per entry and key: the mobile row image last copied (md5 of its staged columns)
//                         and the desktop row as written (md5 of the columns reverse writes); a NULL
//                         desktop_hash marks a key that collided with a desktop row reverse never wrote
//   reverse_state         per entry: the target snapshot the last promoted run read in, last success
//   reverse_pending       a run whose desktop transaction (its xid) may or may not have committed
//   reverse_pending_rows  that run's bookkeeping changes, promoted only once the xid is known committed
//
// The tables are created with IF NOT EXISTS next to the versioned metadata
// (state/metadata.h), so forward-only targets never get them and the schema
// version is untouched. What is not an error: the tables being absent (no
// reverse run yet: nothing was copied).
#pragma once

#include <string>

namespace stagesync::state {

// Statements (one string, simple protocol) creating the bookkeeping tables when missing.
std::string reverse_book_ddl();

// Promotes pending run $1 (a text parameter): its bookkeeping changes, its
// watermarks and its run record; then forgets it. Statements for one
// transaction, in order, each taking $1 only.
const char* const* reverse_promote_sql(int& count);
// Forgets pending run $1 (its desktop transaction did not commit).
const char* const* reverse_discard_sql(int& count);

}  // namespace stagesync::state
