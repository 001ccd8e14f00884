// A position in the server's write-ahead log (PostgreSQL's pg_lsn), written
// as two hexadecimal halves: "16/B374D848". 0/0 is "no position".
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace stagesync::logical {

struct Lsn {
  uint64_t value = 0;

  // Parses "HI/LO" (hexadecimal, either case). Throws std::invalid_argument
  // naming the text when it is not an LSN.
  static Lsn parse(std::string_view text);
  // "HI/LO" in upper case without leading zeros, as the server prints it.
  std::string str() const;
  bool valid() const { return value != 0; }
  auto operator<=>(const Lsn&) const = default;
};

}  // namespace stagesync::logical
