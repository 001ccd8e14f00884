// `stagesync status`: what the target's metadata says — recent runs, each
// configured table's last success and lag, staging leftovers of interrupted
// runs, and whether a run is in progress. Reads only; needs only the target.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"

namespace stagesync::run {

// The status as one JSON document (also rendered for people by render_status()).
nlohmann::json read_status(const config::Config& cfg, int recent_runs = 10);
std::string render_status(const nlohmann::json& status);

}  // namespace stagesync::run
