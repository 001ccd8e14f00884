// The pieces of a PostgreSQL COPY (FORMAT text) field that do not depend on the target type.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace stagesync::sqlite {

// Appends `bytes` as one field: backslash, tab, newline and carriage return escaped, everything else as is.
void append_copy_field(std::string& line, std::string_view bytes);

// The offset of the first byte that is not part of valid UTF-8 (overlong forms, surrogates and code points
// above U+10FFFF are invalid), or npos. NUL is valid UTF-8 (PostgreSQL text refuses it: checked separately).
size_t utf8_invalid_at(std::string_view bytes);

// Code points in valid UTF-8.
size_t utf8_length(std::string_view bytes);

// The shortest text that reads back as the same double ("0.1", "1e+100", "-0"); "Infinity", "-Infinity",
// "NaN" as PostgreSQL writes them.
std::string double_text(double d);

}  // namespace stagesync::sqlite
