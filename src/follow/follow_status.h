// `stagesync status`'s followers: per follow slot recorded on the target,
// what the desktop's slot holds back (retained WAL), the target's confirmed
// LSN, and how far behind the desktop's WAL it is. Reads only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"
#include "pg/connection.h"

namespace stagesync::follow {

// A JSON array (docs/json.md, status `followers`), one object per follower
// recorded on `target`. The desktop is asked only when there is one; a
// desktop that cannot be reached is reported in `desktop_error`, not thrown.
nlohmann::json follow_status(pg::Connection& target, const config::Config& cfg);
// Lines for people ("" when there is no follower).
std::string render_followers(const nlohmann::json& followers);

}  // namespace stagesync::follow
