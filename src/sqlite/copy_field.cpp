#include "sqlite/copy_field.h"

#include <charconv>
#include <cmath>

namespace stagesync::sqlite {

void append_copy_field(std::string& line, std::string_view bytes) {
  size_t plain = 0;  // start of the run of bytes that need no escape
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char* escaped = nullptr;
    switch (bytes[i]) {
      case '\\':
        escaped = "\\\\";
        break;
      case '\t':
        escaped = "\\t";
        break;
      case '\n':
        escaped = "\\n";
        break;
      case '\r':
        escaped = "\\r";
        break;
      default:
        continue;
    }
    line.append(bytes.substr(plain, i - plain));
    line.append(escaped);
    plain = i + 1;
  }
  line.append(bytes.substr(plain));
}

size_t utf8_invalid_at(std::string_view s) {
  size_t i = 0;
  auto cont = [&](size_t k, unsigned lo, unsigned hi) {
    if (i + k >= s.size()) return false;
    unsigned b = static_cast<unsigned char>(s[i + k]);
    return b >= lo && b <= hi;
  };
  while (i < s.size()) {
    unsigned b = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    if (b < 0x80) {
      n = 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      if (cont(1, 0x80, 0xBF)) n = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      unsigned lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;  // no overlongs, no surrogates
      if (cont(1, lo, hi) && cont(2, 0x80, 0xBF)) n = 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
      unsigned lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;  // no overlongs, nothing past U+10FFFF
      if (cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF)) n = 4;
    }
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

std::string double_text(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

}  // namespace stagesync::sqlite
