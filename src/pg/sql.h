// SQL text building: the one place identifiers are quoted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace stagesync::pg {

// "name" with embedded quotes doubled: safe for any UTF-8 name.
std::string ident(std::string_view name);
// A configured table name, "table" or "schema.table", each part quoted so it keeps its case.
std::string dotted_name(std::string_view name);
// "schema"."name"
std::string qualified(std::string_view schema, std::string_view name);
// alias."c1", alias."c2" (alias may be empty)
std::string column_list(const std::vector<std::string>& columns, std::string_view alias = {});
// 'text' with embedded quotes doubled, for names shown in messages built by
// SQL. Sessions run with standard_conforming_strings = on (set at connect).
std::string text_literal(std::string_view text);
std::string join(const std::vector<std::string>& parts, std::string_view separator);
// A text[] value in array input syntax ({"a","b"}), for a parameter: one
// statement can then take a list of any length.
std::string text_array(const std::vector<std::string>& values);

// Collects parameter values while SQL is built; add() returns "$n".
class Params {
 public:
  std::string add(std::string value) {
    values_.emplace_back(std::move(value));
    return "$" + std::to_string(values_.size());
  }
  const std::vector<std::string>& values() const { return values_; }

 private:
  std::vector<std::string> values_;
};

}  // namespace stagesync::pg
