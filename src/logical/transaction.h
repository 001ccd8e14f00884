// One committed desktop transaction as the slot delivers it: whole, in commit
// order. A follower applies it in one target transaction (never split) and
// confirms `end_lsn` to the slot after that commit.
#pragma once

#include <cstdint>
#include <string>

#include "logical/change_spool.h"
#include "logical/lsn.h"

namespace stagesync::logical {

struct Transaction {
  uint32_t xid = 0;
  Lsn first_lsn;  // its first WAL record
  // The end of its commit record: the position to confirm once applied.
  // (test_decoding reports no commit-record start; end_lsn is what a restart
  // compares against: a transaction whose commit ends at or before the
  // confirmed position is not sent again.)
  Lsn end_lsn;
  std::string commit_time;  // as the server printed it, with its UTC offset
  ChangeSpool changes;
};

}  // namespace stagesync::logical
