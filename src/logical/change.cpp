#include "logical/change.h"

namespace stagesync::logical {

const ColumnValue* Change::find(const std::string& column, bool old) const {
  for (const auto& c : old ? old_key : new_values)
    if (c.name == column) return &c;
  return nullptr;
}

const char* to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::insert:
      return "insert";
    case ChangeKind::update:
      return "update";
    case ChangeKind::remove:
      return "delete";
    case ChangeKind::truncate:
      return "truncate";
  }
  return "?";
}

}  // namespace stagesync::logical
