// Typed outcomes of the replication slot that stagesync decides on, even when
// a server error revealed them (CONTRIBUTING.md: one outcome, one type).
//
// SlotLost: the slot is gone (dropped by someone) or the server invalidated
// it (it held more WAL than max_slot_wal_keep_size allows). Changes since the
// last confirmed position can no longer be read: the follower must take a
// full sync (guards apply) and create a new slot. Not transient: reconnecting
// does not bring the slot back.
//
// DecodeError: the plugin's output is not what this decoder understands (a
// bug or an unsupported server); nothing was confirmed for it.
#pragma once

#include <stdexcept>
#include <string>

namespace stagesync::logical {

class SlotLost : public std::runtime_error {
 public:
  enum class Reason { missing, invalidated };
  SlotLost(std::string message, std::string slot, Reason reason)
      : std::runtime_error(std::move(message)), slot_(std::move(slot)), reason_(reason) {}
  const std::string& slot() const { return slot_; }
  Reason reason() const { return reason_; }

 private:
  std::string slot_;
  Reason reason_;
};

class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace stagesync::logical
