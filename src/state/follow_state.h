// stagesync.follow_state (metadata version 5): per replication slot on the
// desktop, the end LSN of the last desktop transaction the target holds.
// `follow` writes it in the same target transaction as the batch that
// applied that transaction, and confirms it to the slot only after COMMIT:
// the slot never releases what the target does not hold, and a restart
// reads again from here (decision 0012).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "pg/pipeline.h"

namespace stagesync::state {

struct FollowState {
  std::string slot_name;
  std::string scope_key;
  std::string source;         // the desktop, as source::Source::describe() says (no password)
  std::string confirmed_lsn;  // "HI/LO"
  std::string last_run_id;
  int64_t batches = 0;
  std::string updated_at;  // ISO 8601, UTC, to the second
  double lag_seconds = 0;  // since updated_at
};

// The follower of `slot_name`; nullopt when there is none (or no metadata
// yet: a target that never ran follow). Outside a transaction.
std::optional<FollowState> read_follow_state(pg::Connection& target, const std::string& slot_name);
// Every follower recorded on the target (for `status`); empty without metadata.
std::vector<FollowState> read_follow_states(pg::Connection& target);
// Adds the upsert of `slot_name`'s confirmed LSN to `batch` (inside the
// batch's transaction): `first` starts the count of batches again (a new slot).
void record_follow_state(pg::Pipeline& batch, const FollowState& state, bool first);
// Moves the follower's LSN on (transactions that changed no followed table), in a transaction of its own.
void advance_follow_state(pg::Connection& target, const std::string& slot_name, const std::string& lsn);
// Deletes the follower's row (its slot is gone or dropped). No metadata: nothing to do.
void forget_follow_state(pg::Connection& target, const std::string& slot_name);

}  // namespace stagesync::state
