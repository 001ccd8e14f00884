#include "sqlite/value_converter.h"

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>

#include "sqlite/copy_field.h"
#include "sqlite/date_time.h"

namespace stagesync::sqlite {

namespace {

using Kind = ValueConverter::Kind;

std::string_view text_of(sqlite3_value* v) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_value_text(v));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v))) : std::string_view();
}

std::string_view blob_of(sqlite3_value* v) {
  const auto* p = static_cast<const char*>(sqlite3_value_blob(v));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_value_bytes(v))) : std::string_view();
}

Kind kind_of(const std::string& base_type) {
  // base_type as the catalog writes it: "pg_catalog"."int4" (quoted), or unquoted.
  std::string t;
  for (char c : base_type) if (c != '"') t += c;
  if (t.rfind("pg_catalog.", 0) == 0) t = t.substr(11);
  if (t == "int2") return Kind::Int2;
  if (t == "int4") return Kind::Int4;
  if (t == "int8") return Kind::Int8;
  if (t == "float4") return Kind::Float4;
  if (t == "float8") return Kind::Float8;
  if (t == "numeric") return Kind::Numeric;
  if (t == "text" || t == "varchar" || t == "bpchar") return Kind::Text;
  if (t == "bool") return Kind::Bool;
  if (t == "date") return Kind::Date;
  if (t == "timestamp") return Kind::Timestamp;
  if (t == "timestamptz") return Kind::TimestampTz;
  if (t == "time") return Kind::Time;
  if (t == "bytea") return Kind::Bytea;
  if (t == "uuid") return Kind::Uuid;
  return Kind::Other;
}

const char* default_name(Kind k) {
  switch (k) {
    case Kind::Int2:
      return "smallint";
    case Kind::Int4:
      return "integer";
    case Kind::Int8:
      return "bigint";
    case Kind::Float4:
      return "real";
    case Kind::Float8:
      return "double precision";
    case Kind::Numeric:
      return "numeric";
    case Kind::Text:
      return "text";
    case Kind::Bool:
      return "boolean";
    case Kind::Date:
      return "date";
    case Kind::Timestamp:
      return "timestamp without time zone";
    case Kind::TimestampTz:
      return "timestamp with time zone";
    case Kind::Time:
      return "time without time zone";
    case Kind::Bytea:
      return "bytea";
    case Kind::Uuid:
      return "uuid";
    case Kind::Other:
      break;
  }
  return "";
}

// TEXT or a BLOB as text: valid UTF-8 without NUL.
bool valid_text(sqlite3_value* v, std::string_view s, std::string& why) {
  size_t bad = utf8_invalid_at(s);
  if (bad != std::string_view::npos) {
    why = describe_value(v) + " is not valid UTF-8 (byte " + std::to_string(bad + 1) + " of " +
          std::to_string(s.size()) + ")";
    return false;
  }
  size_t nul = s.find('\0');
  if (nul != std::string_view::npos) {
    why = describe_value(v) + " contains a NUL character (byte " + std::to_string(nul + 1) +
          "), which PostgreSQL text cannot hold";
    return false;
  }
  return true;
}

void append_integer(std::string& out, int64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

void append_hex(std::string& out, std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
}

bool lower_equals(std::string_view s, const char* word) {
  size_t i = 0;
  for (; i < s.size() && word[i]; ++i) {
    char c = s[i] >= 'A' && s[i] <= 'Z' ? static_cast<char>(s[i] - 'A' + 'a') : s[i];
    if (c != word[i]) return false;
  }
  return i == s.size() && word[i] == '\0';
}

}  // namespace

ValueConverter::ValueConverter(const catalog::Column& target, const std::string& timezone)
    : kind_(kind_of(target.base_type)), max_length_(target.max_length), timezone_(timezone) {
  type_name_ = !target.type.empty() ? target.type : default_name(kind_);
  if (type_name_.empty()) type_name_ = target.base_type;
}

bool ValueConverter::append(sqlite3_value* value, std::string& line, std::string& why) const {
  int type = sqlite3_value_type(value);
  if (type == SQLITE_NULL) {
    line += "\\N";
    return true;
  }
  return convert(value, type, line, why);
}

bool ValueConverter::convert(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  switch (kind_) {
    case Kind::Int2:
    case Kind::Int4:
    case Kind::Int8:
      return to_integer(v, type, line, why);
    case Kind::Float4:
    case Kind::Float8:
      return to_float(v, type, line, why);
    case Kind::Numeric:
      return to_numeric(v, type, line, why);
    case Kind::Text:
      return to_text(v, type, line, why);
    case Kind::Bool:
      return to_bool(v, type, line, why);
    case Kind::Date:
    case Kind::Timestamp:
    case Kind::TimestampTz:
    case Kind::Time:
      return to_date_time(v, type, line, why);
    case Kind::Bytea:
      return to_bytea(v, type, line, why);
    case Kind::Uuid:
    case Kind::Other:
      return to_other(v, type, line, why);
  }
  return to_other(v, type, line, why);
}

bool ValueConverter::to_integer(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  if (kind_ == Kind::Int2) lo = -32768, hi = 32767;
  if (kind_ == Kind::Int4) lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
  int64_t n = 0;
  if (type == SQLITE_INTEGER) {
    n = sqlite3_value_int64(v);
  } else if (type == SQLITE_FLOAT) {
    double d = sqlite3_value_double(v);
    if (!std::isfinite(d) || d != std::trunc(d)) {
      why = describe_value(v) + " is not an integer";
      return false;
    }
    if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
      why = describe_value(v) + " is out of range for " + type_name_;
      return false;
    }
    n = static_cast<int64_t>(d);
  } else if (type == SQLITE_TEXT) {
    std::string_view s = text_of(v);
    std::string_view digits = s.size() > 1 && s[0] == '+' && s[1] != '-' ? s.substr(1) : s;
    auto r = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || r.ptr != digits.data() + digits.size() ||
        (r.ec != std::errc() && r.ec != std::errc::result_out_of_range)) {
      why = describe_value(v) + " is not an integer";
      return false;
    }
    if (r.ec == std::errc::result_out_of_range) {
      why = describe_value(v) + " is out of range for " + type_name_;
      return false;
    }
  } else {
    why = describe_value(v) + " is not an integer";
    return false;
  }
  if (n < lo || n > hi) {
    why = describe_value(v) + " is out of range for " + type_name_;
    return false;
  }
  append_integer(line, n);
  return true;
}

bool ValueConverter::to_float(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  double d = 0;
  if (type == SQLITE_INTEGER) {
    append_integer(line, sqlite3_value_int64(v));  // exact; PostgreSQL rounds it to the nearest float
    return true;
  }
  if (type == SQLITE_FLOAT) {
    d = sqlite3_value_double(v);
  } else if (type == SQLITE_TEXT) {
    std::string_view s = text_of(v);
    auto r = std::from_chars(s.data(), s.data() + s.size(), d);
    // from_chars also reads "nan(...)", which PostgreSQL does not.
    if (s.empty() || r.ptr != s.data() + s.size() || r.ec == std::errc::invalid_argument ||
        s.find('(') != std::string_view::npos) {
      why = describe_value(v) + " is not a number";
      return false;
    }
    if (r.ec == std::errc::result_out_of_range) {
      why = describe_value(v) + " is out of range for " + type_name_;
      return false;
    }
  } else {
    why = describe_value(v) + " is not a number";
    return false;
  }
  if (kind_ == Kind::Float4 && std::isfinite(d)) {
    // Compared before the cast: a double beyond float's range does not convert (undefined behaviour).
    if (std::fabs(d) > static_cast<double>(FLT_MAX) || (static_cast<float>(d) == 0 && d != 0)) {
      why = describe_value(v) + " is out of range for " + type_name_;
      return false;
    }
  }
  line += double_text(d);
  return true;
}

bool ValueConverter::to_numeric(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  if (type == SQLITE_INTEGER) {
    append_integer(line, sqlite3_value_int64(v));
    return true;
  }
  if (type == SQLITE_FLOAT) {
    line += double_text(sqlite3_value_double(v));
    return true;
  }
  if (type == SQLITE_TEXT) {
    // Validated as a number, passed as written: numeric keeps digits a double would lose.
    std::string_view s = text_of(v);
    double d = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), d);
    if (s.empty() || r.ptr != s.data() + s.size() || r.ec == std::errc::invalid_argument ||
        s.find('(') != std::string_view::npos) {
      why = describe_value(v) + " is not a number";
      return false;
    }
    line.append(s);  // digits, signs, '.', 'e' and the letters of inf/nan: nothing to escape
    return true;
  }
  why = describe_value(v) + " is not a number";
  return false;
}

bool ValueConverter::to_text(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  std::string number;
  std::string_view s;
  if (type == SQLITE_INTEGER) {
    append_integer(number, sqlite3_value_int64(v));
    s = number;
  } else if (type == SQLITE_FLOAT) {
    number = double_text(sqlite3_value_double(v));
    s = number;
  } else {
    s = type == SQLITE_TEXT ? text_of(v) : blob_of(v);
    if (!valid_text(v, s, why)) return false;
  }
  if (max_length_ >= 0 && utf8_length(s) > static_cast<size_t>(max_length_)) {
    // PostgreSQL drops excess spaces; other excess characters would be cut, which is refused here.
    size_t at = 0;
    for (int chars = 0; at < s.size(); ++at) {
      if ((static_cast<unsigned char>(s[at]) & 0xC0) != 0x80 && chars++ == max_length_) break;
    }
    if (s.find_first_not_of(' ', at) != std::string_view::npos) {
      why = describe_value(v) + " has " + std::to_string(utf8_length(s)) + " characters, too long for " + type_name_;
      return false;
    }
  }
  append_copy_field(line, s);
  return true;
}

bool ValueConverter::to_bool(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
    double d = type == SQLITE_INTEGER ? static_cast<double>(sqlite3_value_int64(v)) : sqlite3_value_double(v);
    if (type == SQLITE_INTEGER && (sqlite3_value_int64(v) == 0 || sqlite3_value_int64(v) == 1)) {
      line += sqlite3_value_int64(v) ? 't' : 'f';
      return true;
    }
    if (type == SQLITE_FLOAT && (d == 0.0 || d == 1.0)) {
      line += d != 0.0 ? 't' : 'f';
      return true;
    }
  } else if (type == SQLITE_TEXT) {
    std::string_view s = text_of(v);
    for (const char* yes : {"1", "true", "t", "yes"})
      if (lower_equals(s, yes)) {
        line += 't';
        return true;
      }
    for (const char* no : {"0", "false", "f", "no"})
      if (lower_equals(s, no)) {
        line += 'f';
        return true;
      }
  }
  why = describe_value(v) + " is not a boolean (0/1, true/false, t/f, yes/no)";
  return false;
}

bool ValueConverter::to_date_time(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  DateTime t;
  std::string problem;
  bool from_number = false;
  if (kind_ == Kind::Time) {
    if (type != SQLITE_TEXT) {
      why = describe_value(v) + " is not a time of day (HH:MM[:SS[.SSS]])";
      return false;
    }
    if (!parse_time_of_day(text_of(v), t, problem)) {
      why = describe_value(v) + " " + problem;
      return false;
    }
    line += time_text(t);
    return true;
  }
  if (type == SQLITE_TEXT) {
    if (!parse_date_time(text_of(v), t, problem)) {
      why = describe_value(v) + " " + problem;
      return false;
    }
  } else if (type == SQLITE_FLOAT) {
    from_number = true;
    if (!from_julian_day(sqlite3_value_double(v), t)) {
      why = describe_value(v) + " is out of range as a Julian day number (years 1 to 9999)";
      return false;
    }
  } else if (type == SQLITE_INTEGER) {
    from_number = true;
    int64_t s = sqlite3_value_int64(v);
    bool fits = s >= -62135596800LL && s <= 253402300799LL;
    if (!fits || !from_unix_ms(s * 1000, t)) {
      why = describe_value(v) + " is out of range as Unix seconds (years 1 to 9999)";
      if (s / 1000 >= -62135596800LL && s / 1000 <= 253402300799LL) why += "; milliseconds?";
      return false;
    }
  } else {
    why = describe_value(v) + " is not a date or time";
    return false;
  }
  // A number is an instant in UTC (SQLite's date functions read it so).
  if (from_number) t.offset_minutes = 0;

  if (kind_ == Kind::Date) {
    if (t.has_time && (!t.midnight() || (t.offset_minutes && !from_number))) {
      why = describe_value(v) + " has a time of day; the target column is " + type_name_;
      return false;
    }
    line += date_text(t);
    return true;
  }
  line += date_text(t);
  line += ' ';
  line += time_text(t);
  if (kind_ == Kind::Timestamp) {
    if (t.offset_minutes && !from_number) {
      why = describe_value(v) + " has a UTC offset, which " + type_name_ + " cannot keep (a timestamptz target can)";
      return false;
    }
    return true;
  }
  // timestamptz
  if (t.offset_minutes) {
    line += offset_text(*t.offset_minutes);
  } else if (timezone_.empty()) {
    line += "+00:00";
  } else {
    line += ' ';
    append_copy_field(line, timezone_);
  }
  return true;
}

bool ValueConverter::to_bytea(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  if (type != SQLITE_BLOB && type != SQLITE_TEXT) {
    why = describe_value(v) + " is not binary data (a blob or a text)";
    return false;
  }
  std::string_view bytes = type == SQLITE_BLOB ? blob_of(v) : text_of(v);
  line += "\\\\x";  // \x, its backslash escaped for COPY
  append_hex(line, bytes);
  return true;
}

bool ValueConverter::to_other(sqlite3_value* v, int type, std::string& line, std::string& why) const {
  if (type == SQLITE_TEXT) {
    std::string_view s = text_of(v);
    if (!valid_text(v, s, why)) return false;
    append_copy_field(line, s);
    return true;
  }
  if (kind_ == Kind::Uuid) {
    std::string_view b = type == SQLITE_BLOB ? blob_of(v) : std::string_view();
    if (type != SQLITE_BLOB || b.size() != 16) {
      why = describe_value(v) + " is not a uuid (a text, or a blob of 16 bytes)";
      return false;
    }
    for (size_t i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) line += '-';
      append_hex(line, b.substr(i, 1));
    }
    return true;
  }
  if (type == SQLITE_INTEGER) {
    append_integer(line, sqlite3_value_int64(v));
    return true;
  }
  if (type == SQLITE_FLOAT) {
    line += double_text(sqlite3_value_double(v));
    return true;
  }
  why = describe_value(v) + " cannot be converted to " + type_name_;
  return false;
}

std::string describe_value(sqlite3_value* v) {
  switch (sqlite3_value_type(v)) {
    case SQLITE_NULL:
      return "null";
    case SQLITE_INTEGER:
      return "integer " + std::to_string(sqlite3_value_int64(v));
    case SQLITE_FLOAT:
      return "real " + double_text(sqlite3_value_double(v));
    case SQLITE_BLOB: {
      int n = sqlite3_value_bytes(v);
      return "blob of " + std::to_string(n) + (n == 1 ? " byte" : " bytes");
    }
    default:
      break;
  }
  std::string_view s = text_of(v);
  constexpr size_t shown = 60;
  std::string out = "text '";
  size_t start = out.size();
  size_t i = 0;
  while (i < s.size() && out.size() - start < shown) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t n = 1;
    if (b >= 0x80) {
      // A valid UTF-8 character is shown as it is; any other byte as \xNN.
      size_t bad = utf8_invalid_at(s.substr(i, 4));
      n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
      if (bad < n) n = 0;
    }
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
    } else if (b >= 0x20 && b < 0x7f && b != '\\') {
      out += static_cast<char>(b);
      ++i;
    } else if (b == '\\') {
      out += "\\\\";
      ++i;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", b);
      out += hex;
      ++i;
    }
  }
  if (i < s.size()) out += "...";
  return out + "'";
}

}  // namespace stagesync::sqlite
