// The plain change model the decoder produces: what a committed desktop
// transaction did, table by table, with values as the server's text output.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "logical/lsn.h"

namespace stagesync::logical {

struct Relation {
  std::string schema;
  std::string name;
  bool operator==(const Relation&) const = default;
};

// One column's value: the server's text output, or NULL (nullopt).
struct ColumnValue {
  std::string name;
  std::string type;  // as the server formats it ("integer", "character varying(20)")
  std::optional<std::string> value;
  bool operator==(const ColumnValue&) const = default;
};

enum class ChangeKind { insert, update, remove, truncate };

struct Change {
  ChangeKind kind = ChangeKind::insert;
  Relation relation;
  // insert, update: every column of the new row (an update's TOASTed value
  // the statement did not change is listed in `unchanged_toast` instead).
  std::vector<ColumnValue> new_values;
  // update, delete: the old row's identity as the WAL carries it: the
  // replica identity's columns (primary key or USING INDEX), or every
  // non-NULL column under REPLICA IDENTITY FULL (a missing column is NULL).
  std::vector<ColumnValue> old_key;
  // update, delete: the WAL carries no old key. A delete then says only
  // "some row of this table was deleted", an update only the new row: the
  // follower must reconcile that table's keys for the batch. An update of a
  // table with a primary key that keeps its key also has no old key (the
  // new row's key is the old one).
  bool no_old_key = false;
  // update: columns whose large (TOASTed) value the statement left alone:
  // not in the WAL's new row (under REPLICA IDENTITY FULL the old key has it).
  std::vector<std::string> unchanged_toast;

  // The new (or, with `old`, the old key's) value of `column`; nullptr when
  // the change does not carry that column.
  const ColumnValue* find(const std::string& column, bool old = false) const;
  bool operator==(const Change&) const = default;
};

const char* to_string(ChangeKind kind);

}  // namespace stagesync::logical
