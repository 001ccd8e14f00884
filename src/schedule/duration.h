// Durations as people write them on a command line: "30s", "5m", "1h", "24h", "1h30m", "500ms", "2d".
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace stagesync::schedule {

using Duration = std::chrono::milliseconds;

// nullopt when `text` is not one or more NUMBER UNIT parts (units ms, s, m, h, d; whole numbers), or is zero.
std::optional<Duration> parse_duration(const std::string& text);
// The shortest such text: "5m", "1h30m", "45s", "1.5s" (below a minute, tenths of a second).
std::string format_duration(Duration d);

}  // namespace stagesync::schedule
