// `stagesync status`'s reverse part: per reverse entry, the last promoted run,
// its target snapshot (the reverse watermark), rows copied, and runs still
// pending (resolved by the next reverse run). Shape in docs/json.md.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"
#include "pg/connection.h"

namespace stagesync::reverse {

// An array, one object per configured reverse entry (never-run entries have nulls).
nlohmann::json reverse_status(pg::Connection& target, const config::Config& cfg);
// Lines for people ("" when there are no reverse entries).
std::string render_reverse_status(const nlohmann::json& status);

}  // namespace stagesync::reverse
