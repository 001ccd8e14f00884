#include "sqlite/date_time.h"

#include <cmath>
#include <cstdio>

namespace stagesync::sqlite {

namespace {

constexpr int64_t ms_per_day = 86400000;

const char* const expected_date_time = "YYYY-MM-DD[ HH:MM[:SS[.SSS]]][Z|+HH:MM]";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// `n` digits at `pos`, advancing it.
bool digits(std::string_view s, size_t& pos, size_t n, int& value) {
  if (pos + n > s.size()) return false;
  value = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!is_digit(s[pos + i])) return false;
    value = value * 10 + (s[pos + i] - '0');
  }
  pos += n;
  return true;
}

// `value` (0 or more) as exactly `width` digits (snprintf is slow enough to show in a million rows).
void append_digits(std::string& out, int value, int width) {
  char buf[8];
  for (int i = width - 1; i >= 0; --i, value /= 10) buf[i] = static_cast<char>('0' + value % 10);
  out.append(buf, static_cast<size_t>(width));
}

bool accept(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

// HH:MM[:SS[.F...]] at pos.
bool parse_time_at(std::string_view s, size_t& pos, DateTime& out, std::string& why, const char* expected) {
  if (!digits(s, pos, 2, out.hour) || !accept(s, pos, ':') || !digits(s, pos, 2, out.minute)) {
    why = std::string("is not in the form ") + expected;
    return false;
  }
  if (accept(s, pos, ':')) {
    if (!digits(s, pos, 2, out.second)) {
      why = std::string("is not in the form ") + expected;
      return false;
    }
    if (accept(s, pos, '.')) {
      size_t start = pos;
      while (pos < s.size() && is_digit(s[pos])) ++pos;
      if (pos == start) {
        why = std::string("is not in the form ") + expected;
        return false;
      }
      out.fraction = std::string(s.substr(start, pos - start));
    }
  }
  if (out.hour > 23 || out.minute > 59 || out.second > 59) {
    why = "is not a valid time of day";
    return false;
  }
  out.has_time = true;
  return true;
}

}  // namespace

bool DateTime::midnight() const {
  return hour == 0 && minute == 0 && second == 0 && fraction.find_first_not_of('0') == std::string::npos;
}

bool parse_date_time(std::string_view s, DateTime& out, std::string& why) {
  out = DateTime{};
  size_t pos = 0;
  int y = 0, m = 0, d = 0;
  if (!digits(s, pos, 4, y) || !accept(s, pos, '-') || !digits(s, pos, 2, m) || !accept(s, pos, '-') ||
      !digits(s, pos, 2, d)) {
    why = std::string("is not in the form ") + expected_date_time;
    return false;
  }
  if (y < 1) {
    why = "is out of range (years 1 to 9999)";
    return false;
  }
  if (m < 1 || m > 12) {
    why = "is not a valid date (month " + std::to_string(m) + ")";
    return false;
  }
  out.date = std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(m)},
                                         std::chrono::day{static_cast<unsigned>(d)}};
  if (!out.date.ok()) {
    char ym[16];
    std::snprintf(ym, sizeof ym, "%04d-%02d", y, m);
    why = std::string("is not a valid date (") + ym + " has no day " + std::to_string(d) + ")";
    return false;
  }
  if (pos == s.size()) return true;
  if (!accept(s, pos, ' ') && !accept(s, pos, 'T')) {
    why = std::string("is not in the form ") + expected_date_time;
    return false;
  }
  if (!parse_time_at(s, pos, out, why, expected_date_time)) return false;
  while (accept(s, pos, ' ')) {
  }
  if (pos == s.size()) return true;
  if (accept(s, pos, 'Z') || accept(s, pos, 'z')) {
    out.offset_minutes = 0;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int sign = s[pos++] == '-' ? -1 : 1;
    int oh = 0, om = 0;
    if (!digits(s, pos, 2, oh) || !accept(s, pos, ':') || !digits(s, pos, 2, om) || oh > 14 || om > 59) {
      why = "has an offset that is not +HH:MM or -HH:MM";
      return false;
    }
    out.offset_minutes = sign * (oh * 60 + om);
  }
  if (pos != s.size()) {
    why = std::string("is not in the form ") + expected_date_time;
    return false;
  }
  return true;
}

bool parse_time_of_day(std::string_view s, DateTime& out, std::string& why) {
  out = DateTime{};
  size_t pos = 0;
  if (!parse_time_at(s, pos, out, why, "HH:MM[:SS[.SSS]]")) return false;
  if (pos != s.size()) {
    why = "is not in the form HH:MM[:SS[.SSS]]";
    return false;
  }
  return true;
}

bool from_unix_ms(int64_t ms, DateTime& out) {
  // Years 1 to 9999: 0001-01-01 00:00:00 is -62135596800 s, 9999-12-31 23:59:59.999 is 253402300799999 ms.
  if (ms < -62135596800000LL || ms > 253402300799999LL) return false;
  int64_t days = ms >= 0 ? ms / ms_per_day : -((-ms + ms_per_day - 1) / ms_per_day);
  int64_t in_day = ms - days * ms_per_day;
  out = DateTime{};
  out.date = std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{days}}};
  out.has_time = true;
  out.hour = static_cast<int>(in_day / 3600000);
  out.minute = static_cast<int>(in_day / 60000 % 60);
  out.second = static_cast<int>(in_day / 1000 % 60);
  if (int milli = static_cast<int>(in_day % 1000)) {
    char f[8];
    std::snprintf(f, sizeof f, "%03d", milli);
    out.fraction = f;
  }
  return true;
}

bool from_julian_day(double jd, DateTime& out) {
  // SQLite keeps a Julian day as whole milliseconds (iJD), rounding half up; 1970-01-01 00:00 UTC is
  // Julian day 2440587.5, i.e. iJD 210866760000000.
  if (!std::isfinite(jd) || jd < 0 || jd > 5373484.5) return false;
  auto ijd = static_cast<int64_t>(jd * 86400000.0 + 0.5);
  return from_unix_ms(ijd - 210866760000000LL, out);
}

std::string date_text(const DateTime& t) {
  std::string out;
  append_digits(out, static_cast<int>(t.date.year()), 4);
  out += '-';
  append_digits(out, static_cast<int>(static_cast<unsigned>(t.date.month())), 2);
  out += '-';
  append_digits(out, static_cast<int>(static_cast<unsigned>(t.date.day())), 2);
  return out;
}

std::string time_text(const DateTime& t) {
  std::string out;
  append_digits(out, t.hour, 2);
  out += ':';
  append_digits(out, t.minute, 2);
  out += ':';
  append_digits(out, t.second, 2);
  if (!t.fraction.empty()) out += '.' + t.fraction;
  return out;
}

std::string offset_text(int minutes) {
  char buf[16];
  int a = minutes < 0 ? -minutes : minutes;
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", minutes < 0 ? '-' : '+', a / 60, a % 60);
  return buf;
}

}  // namespace stagesync::sqlite
