#include "logical/transaction_reader.h"

#include "logical/slot_errors.h"
#include "logical/test_decoding.h"

namespace stagesync::logical {

TransactionReader::TransactionReader(ReplicationConnection& stream, SpoolLimits limits)
    : stream_(stream), limits_(std::move(limits)) {}

std::optional<Transaction> TransactionReader::next(std::chrono::milliseconds timeout, Lsn until) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    if (!open_ && until.valid() && stream_.position() >= until) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::optional<XLogData> msg = stream_.read(std::max(left, std::chrono::milliseconds(0)), open_ ? Lsn{} : until);
    if (!msg) return std::nullopt;
    DecodedMessage decoded = parse_test_decoding(msg->data);
    if (auto* b = std::get_if<BeginMessage>(&decoded)) {
      if (open_)
        throw DecodeError("BEGIN " + std::to_string(b->xid) + " inside transaction " + std::to_string(open_->xid));
      open_.emplace(Transaction{b->xid, msg->wal_start, Lsn{}, {}, ChangeSpool(limits_)});
    } else if (auto* ch = std::get_if<ChangeMessage>(&decoded)) {
      if (!open_) throw DecodeError("a change outside a transaction: " + msg->data.substr(0, 200));
      for (auto& c : ch->changes) open_->changes.append(std::move(c));
    } else if (auto* cm = std::get_if<CommitMessage>(&decoded)) {
      if (!open_ || open_->xid != cm->xid)
        throw DecodeError("COMMIT " + std::to_string(cm->xid) + " without its BEGIN");
      open_->end_lsn = msg->wal_start;
      open_->commit_time = std::move(cm->commit_time);
      Transaction done = std::move(*open_);
      open_.reset();
      return done;
    }
  }
}

}  // namespace stagesync::logical
