// `stagesync check` for follow (when the configuration has a `follow:`
// block, or with `check --follow`): whether the desktop is ready for logical
// capture (logical::check_readiness: each problem with the line that fixes
// it), and what the WAL carries for updates and deletes of each followed
// table (and what `follow: { replica_identity: full }` would change). Reads only.
#pragma once

#include "config/config.h"
#include "run/check_run.h"

namespace stagesync::follow {

void check_follow(const config::Config& cfg, run::CheckReport& report);

}  // namespace stagesync::follow
