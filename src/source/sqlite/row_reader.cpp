#include "source/sqlite/row_reader.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <charconv>

#include "apply/table_counts.h"
#include "sqlite/value_converter.h"

namespace stagesync::source::sqlite_source {
namespace {

constexpr int64_t kFingerprintMask = (int64_t{1} << 62) - 1;

// Whether an equality value is written as an integer (compared as one by any
// column affinity), else bound as text.
bool integer_text(const std::string& v, int64_t& out) {
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && p == v.data() + v.size() && !v.empty();
}

std::string select_sql(const plan::TablePlan& t, bool with_rowid) {
  std::vector<std::string> exprs;
  if (with_rowid) exprs.push_back("t.rowid");
  for (const auto& c : t.columns) {
    exprs.push_back(c.lookup < 0 ? "t." + quote_ident(c.name) : "l" + std::to_string(c.lookup) + ".v");
  }
  std::string sql = "SELECT ";
  for (size_t i = 0; i < exprs.size(); ++i) sql += (i ? ", " : "") + exprs[i];
  sql += " FROM main." + quote_ident(t.source.name) + " AS t";
  for (size_t i = 0; i < t.lookups.size(); ++i) {
    const auto& l = t.lookups[i];
    std::string alias = "l" + std::to_string(i), match, not_null, on;
    for (size_t k = 0; k < l.match.size(); ++k) {
      std::string m = quote_ident(l.match[k]);
      match += (k ? ", " : "") + m;
      not_null += (k ? " AND " : "") + m + " IS NOT NULL";
      on += (k ? " AND " : "") + alias + "." + m + " = t." + m;
    }
    sql += " LEFT JOIN (SELECT " + match + ", min(" + quote_ident(l.take) + ") AS v FROM main." +
           quote_ident(l.from.name) + " WHERE " + not_null + " GROUP BY " + match + ") AS " + alias + " ON " + on;
  }
  return sql + scope_where(t);
}

}  // namespace

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string scope_where(const plan::TablePlan& t) {
  std::string sql;
  for (size_t i = 0; i < t.scope.size(); ++i) {
    sql += (i ? " AND t." : " WHERE t.") + quote_ident(t.scope[i].first) + " = ?" + std::to_string(i + 1);
  }
  return sql;
}

void bind_scope(sqlite::Statement& s, const plan::TablePlan& table) {
  for (size_t i = 0; i < table.scope.size(); ++i) {
    int64_t n = 0;
    if (integer_text(table.scope[i].second, n)) {
      s.bind_int64(static_cast<int>(i + 1), n);
    } else {
      s.bind_text(static_cast<int>(i + 1), table.scope[i].second);
    }
  }
}

RowReader::RowReader(sqlite::Database& db, const plan::TablePlan& table, const std::string& timezone)
    : table_(table) {
  // The rowid names a row in messages; views and WITHOUT ROWID tables have none.
  for (bool rowid : {true, false}) {
    try {
      stmt_ = std::make_unique<sqlite::Statement>(db, select_sql(table, rowid));
      with_rowid_ = rowid;
      break;
    } catch (const sqlite::Error&) {
      if (!rowid) throw;
    }
  }
  bind_scope(*stmt_, table);
  for (const auto& c : table.columns) converters_.emplace_back(c.target, timezone);
  for (const auto& k : table.key) {
    for (size_t i = 0; i < table.columns.size(); ++i) {
      if (table.columns[i].name == k) key_columns_.push_back(static_cast<int>(i));
    }
  }
  field_end_.resize(table.columns.size());
}

bool RowReader::next() {
  if (!stmt_->step()) return false;
  ++rows_;
  line_.clear();
  int offset = with_rowid_ ? 1 : 0;
  for (size_t i = 0; i < converters_.size(); ++i) {
    if (i) line_ += '\t';
    if (!converters_[i].append(stmt_->value(static_cast<int>(i) + offset), line_, why_)) {
      throw apply::DataRefused(table_.name, "column " + table_.columns[i].name + ", " + where_this_row() + ": " + why_ +
                                                "; the run stopped before anything was applied");
    }
    field_end_[i] = line_.size();
  }
  key_ = fields(key_columns_);
  line_ += '\n';
  return true;
}

std::string_view RowReader::field(size_t i) const {
  size_t begin = i == 0 ? 0 : field_end_[i - 1] + 1;
  return std::string_view(line_).substr(begin, field_end_[i] - begin);
}

std::string RowReader::fields(const std::vector<int>& positions) const {
  std::string out;
  for (size_t k = 0; k < positions.size(); ++k) {
    if (k) out += '\t';
    out += field(static_cast<size_t>(positions[k]));
  }
  return out;
}

int64_t RowReader::fingerprint() const {
  return static_cast<int64_t>(XXH3_64bits(line_.data(), line_.size()) & static_cast<uint64_t>(kFingerprintMask));
}

std::string RowReader::where_this_row() const {
  std::string at;
  if (with_rowid_) at = "rowid " + std::to_string(stmt_->int64(0));
  // The key as read (raw), when the key columns come before the failing one is not known: show them raw.
  std::string key;
  for (const auto& k : table_.key) {
    for (size_t i = 0; i < table_.columns.size(); ++i) {
      if (table_.columns[i].name != k) continue;
      key += (key.empty() ? "" : ", ") + k + " = " +
             sqlite::describe_value(stmt_->value(static_cast<int>(i) + (with_rowid_ ? 1 : 0)));
    }
  }
  if (!key.empty()) at += (at.empty() ? "key (" : " (key ") + key + ")";
  return at.empty() ? "a row" : at;
}

}  // namespace stagesync::source::sqlite_source
