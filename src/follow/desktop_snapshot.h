// The desktop snapshot a follow batch is read in, and which decoded
// transactions it shows (decision 0012): a transaction is in the batch when
// the snapshot sees it committed, i.e. its id is below xmin, or below xmax
// and not in the in-progress list. The first transaction it does not show
// (committed after the snapshot was taken) ends the batch and starts the next.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "logical/lsn.h"
#include "pg/connection.h"

namespace stagesync::follow {

struct DesktopSnapshot {
  uint64_t xmin = 0;  // full (epoch-extended) transaction ids
  uint64_t xmax = 0;
  std::vector<uint64_t> xip;
  // The desktop's WAL insert position read after the snapshot: every
  // transaction the snapshot shows committed before it.
  logical::Lsn wal_insert;

  // `xid`: a 32-bit id as test_decoding prints it, taken as the full id
  // nearest below xmax (a decoded transaction is never 2^31 ids away).
  bool shows(uint32_t xid) const;

  // Parses pg_current_snapshot()'s text "xmin:xmax:xip,xip". Throws std::invalid_argument.
  static DesktopSnapshot parse(const std::string& text, logical::Lsn wal_insert);
  // Reads the snapshot of the REPEATABLE READ transaction open on `desktop`
  // (call it after the transaction's first statement) and the insert position.
  static DesktopSnapshot read(pg::Connection& desktop);
};

}  // namespace stagesync::follow
