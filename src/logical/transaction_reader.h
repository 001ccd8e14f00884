// Whole committed transactions from a started replication stream
// (test_decoding), each with its changes in a ChangeSpool: memory stays
// bounded however large the desktop transaction.
//
// next() returns a transaction only once its COMMIT has arrived; a partly
// read one is kept and continued by the next call. Nothing is confirmed
// here: the caller confirms a transaction's end_lsn
// (ReplicationConnection::confirm) after its target committed it.
#pragma once

#include <chrono>
#include <optional>

#include "logical/replication_connection.h"
#include "logical/transaction.h"

namespace stagesync::logical {

class TransactionReader {
 public:
  explicit TransactionReader(ReplicationConnection& stream, SpoolLimits limits = {});

  // The next committed transaction, waiting at most `timeout` in all;
  // nullopt when none completed in time, or at once when, between two
  // transactions, the stream has shown a position at or past `until` (when
  // valid): the caller has caught up with it and need not wait. Throws DecodeError on output it
  // does not understand, and what ReplicationConnection::read throws; after
  // any exception the reader and its connection are done (a partly read
  // transaction is dropped): reconnect, and the slot sends it again whole.
  std::optional<Transaction> next(std::chrono::milliseconds timeout, Lsn until = {});

  // True while a transaction has begun but not committed: then a keepalive's
  // WAL end must not be confirmed.
  bool inside_transaction() const { return open_.has_value(); }

 private:
  ReplicationConnection& stream_;
  SpoolLimits limits_;
  std::optional<Transaction> open_;
};

}  // namespace stagesync::logical
