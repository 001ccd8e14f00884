// Reading the desktop as of a new slot's consistent point: a normal
// connection adopts the snapshot CREATE_REPLICATION_SLOT exported, so it sees
// exactly the transactions committed before the slot's first change (a row
// committed later arrives through the stream instead; never both, never
// neither). The replication connection must stay open and run no other
// command until this has been called.
#pragma once

#include <string>

#include "pg/connection.h"

namespace stagesync::logical {

// BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT
// in one round trip. The caller ends the transaction (COMMIT or ROLLBACK).
void begin_in_snapshot(pg::Connection& conn, const std::string& snapshot_name);

}  // namespace stagesync::logical
