#include "logical/lsn.h"

#include <cstdio>
#include <stdexcept>

namespace stagesync::logical {
namespace {

// One hexadecimal half of at most eight digits; false when it is not one.
bool parse_half(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 8) return false;
  out = 0;
  for (char c : text) {
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return false;
    out = out * 16 + static_cast<uint64_t>(digit);
  }
  return true;
}

}  // namespace

Lsn Lsn::parse(std::string_view text) {
  size_t slash = text.find('/');
  uint64_t hi = 0, lo = 0;
  if (slash == std::string_view::npos || !parse_half(text.substr(0, slash), hi) ||
      !parse_half(text.substr(slash + 1), lo)) {
    throw std::invalid_argument("not a WAL position (LSN): \"" + std::string(text) + "\"");
  }
  return Lsn{(hi << 32) | lo};
}

std::string Lsn::str() const {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(value >> 32),
                static_cast<unsigned>(value & 0xFFFFFFFFu));
  return buf;
}

}  // namespace stagesync::logical
