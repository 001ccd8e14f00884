// Dates and times as SQLite applications store them: ISO-8601 text as SQLite's date functions write and accept
// it, Julian day numbers (REAL) and Unix seconds (INTEGER). Only what conversion needs: parse, validate, print.
// Years 1 to 9999 (SQLite's range, without year 0, which PostgreSQL does not accept).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace stagesync::sqlite {

struct DateTime {
  std::chrono::year_month_day date{};
  bool has_time = false;  // the text had a time of day (a number always has one)
  int hour = 0;
  int minute = 0;
  int second = 0;
  std::string fraction;               // the digits after the seconds' point, as written; "" when none
  std::optional<int> offset_minutes;  // "Z": 0, "+02:00": 120, "-05:30": -330; nullopt when none

  bool midnight() const;  // 00:00:00 with no fraction other than zeros
};

// "YYYY-MM-DD", then optionally ' ' or 'T' and "HH:MM[:SS[.F...]]", then optionally (after spaces) "Z" or
// "+HH:MM"/"-HH:MM". False with `why` saying what is wrong ("is not a date (month 13)", ...).
bool parse_date_time(std::string_view text, DateTime& out, std::string& why);
// "HH:MM[:SS[.F...]]" alone.
bool parse_time_of_day(std::string_view text, DateTime& out, std::string& why);
// Milliseconds since 1970-01-01 00:00 UTC. False outside years 1 to 9999.
bool from_unix_ms(int64_t ms, DateTime& out);
// A Julian day number as SQLite reads one (rounded to the millisecond, UTC). False outside years 1 to 9999.
bool from_julian_day(double jd, DateTime& out);

std::string date_text(const DateTime& t);  // "2024-03-05"
std::string time_text(const DateTime& t);  // "10:20:30" or "10:20:30.125"
std::string offset_text(int minutes);      // "+02:00", "-05:30", "+00:00"

}  // namespace stagesync::sqlite
