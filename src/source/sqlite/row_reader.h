// One table of a SQLite source, read in target shape: each row becomes a
// line of PostgreSQL COPY text (the plan's staged columns in order, each
// value converted to its target column's type by sqlite::ValueConverter),
// with its key (the key columns' fields) and a fingerprint of the line.
//
// The SELECT runs on SQLite: the scope as equality conditions, each lookup as
// a LEFT JOIN of its table grouped by the match columns, taking the smallest
// non-NULL value (as the PostgreSQL source does; SQLite builds a transient
// index for the join). A value that does not convert is not an error of the
// reader's own: it throws apply::DataRefused naming table, column, the row's
// key (or rowid) and the value, so the run stops before anything is applied.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plan/sync_plan.h"
#include "sqlite/database.h"
#include "sqlite/statement.h"
#include "sqlite/value_converter.h"

namespace stagesync::source::sqlite_source {

class RowReader {
 public:
  // `timezone`: the zone of zone-less date-times (source: { timezone }), empty for UTC.
  RowReader(sqlite::Database& db, const plan::TablePlan& table, const std::string& timezone);

  // The next row; false at the end.
  bool next();
  // The row as one COPY text line, ending in a newline.
  const std::string& line() const { return line_; }
  // The key columns' fields (COPY text, in plan key order) joined by tabs:
  // also a COPY text line of the key columns, without its newline.
  const std::string& key() const { return key_; }
  // Field `i` of line() (staged column i, COPY text).
  std::string_view field(size_t i) const;
  // The fields at `positions` joined by tabs (a projection, such as a reference's columns).
  std::string fields(const std::vector<int>& positions) const;
  // 62-bit fingerprint of line() (see FingerprintCache for why 62).
  int64_t fingerprint() const;
  int64_t rows() const { return rows_; }

 private:
  std::string where_this_row() const;

  const plan::TablePlan& table_;
  std::unique_ptr<sqlite::Statement> stmt_;
  std::vector<sqlite::ValueConverter> converters_;
  std::vector<int> key_columns_;  // positions in table_.columns of the key columns, in key order
  bool with_rowid_ = false;       // column 0 is the rowid
  std::string line_, key_, why_;
  std::vector<size_t> field_end_;  // end offset of each field in line_
  int64_t rows_ = 0;
};

// A SQLite identifier, quoted.
std::string quote_ident(const std::string& name);
// " WHERE t.a = ?1 AND ..." for the table's scope, and its values bound to `s`
// (an integer as an integer, so that it matches whatever the column's affinity).
std::string scope_where(const plan::TablePlan& table);
void bind_scope(sqlite::Statement& s, const plan::TablePlan& table);

}  // namespace stagesync::source::sqlite_source
