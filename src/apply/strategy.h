#pragma once

#include <optional>
#include <string>

namespace stagesync::apply {

// How staged rows replace the owned rows of a target table.
enum class Strategy {
  Merge,          // insert new, update changed, delete vanished: writes only differences
  Swap,           // delete every owned row, insert every staged row, in one transaction
  TruncateFirst,  // development only: clear owned rows, then load (not atomic)
};

std::string to_string(Strategy s);
std::optional<Strategy> parse_strategy(const std::string& s);

}  // namespace stagesync::apply
