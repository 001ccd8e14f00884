// `stagesync plan` when the configuration has a `follow:` block: what
// `follow` gets from the desktop's WAL for each followed table (its replica
// identity today, logical::read_identities: one query on the desktop, none on
// the target), what that means for a batch, and, with the opt-in `follow: {
// replica_identity: full }`, exactly which ALTER TABLE statements `stagesync
// follow --apply-replica-identity` would run, with their measured WAL cost
// (decision 0011). Reads only: nothing on either server changes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.h"
#include "logical/change.h"

namespace stagesync::follow {

struct FollowPlan {
  std::vector<std::string> lines;  // for people, one fact each
  nlohmann::json json;             // the `follow` member of plan's summary (docs/json.md)
};

// The configured (source) tables as desktop relations; a name without a schema is in `public`.
std::vector<logical::Relation> followed_relations(const config::Config& cfg);

// Throws pg::Error when the desktop cannot be asked (exit 4, as any plan).
FollowPlan plan_follow(const config::Config& cfg);

}  // namespace stagesync::follow
