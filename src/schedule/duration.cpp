#include "schedule/duration.h"

#include <cctype>
#include <cstdio>

namespace stagesync::schedule {

std::optional<Duration> parse_duration(const std::string& text) {
  Duration total{0};
  size_t i = 0;
  if (text.empty()) return std::nullopt;
  while (i < text.size()) {
    size_t digits = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == digits || i - digits > 9) return std::nullopt;
    int64_t n = std::stoll(text.substr(digits, i - digits));
    size_t unit = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string u = text.substr(unit, i - unit);
    if (u == "ms")
      total += Duration(n);
    else if (u == "s")
      total += std::chrono::seconds(n);
    else if (u == "m")
      total += std::chrono::minutes(n);
    else if (u == "h")
      total += std::chrono::hours(n);
    else if (u == "d")
      total += std::chrono::hours(24 * n);
    else
      return std::nullopt;
  }
  if (total.count() <= 0) return std::nullopt;
  return total;
}

std::string format_duration(Duration d) {
  int64_t ms = d.count();
  if (ms < 60000) {
    char buf[32];
    if (ms % 1000 == 0)
      std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ms / 1000));
    else
      std::snprintf(buf, sizeof buf, "%.1fs", ms / 1000.0);
    return buf;
  }
  int64_t s = ms / 1000;
  std::string out;
  if (s >= 86400 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s >= 3600) out += std::to_string(s / 3600) + "h";
  if (s % 3600 >= 60) out += std::to_string(s % 3600 / 60) + "m";
  if (s % 60) out += std::to_string(s % 60) + "s";
  return out;
}

}  // namespace stagesync::schedule
