#include "source/sqlite/stored_digest.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstring>

#include "source/sqlite/row_reader.h"
#include "sqlite/statement.h"

namespace stagesync::source::sqlite_source {

std::string StoredDigest::rows(const std::string& select, const plan::TablePlan* scoped) {
  auto it = scoped ? memo_.end() : memo_.find(select);
  if (it != memo_.end()) return it->second;
  sqlite::Statement s(db_, select);
  if (scoped) bind_scope(s, *scoped);
  uint64_t count = 0, sum = 0;
  // Each row's values (storage class, then the value's bytes) in one buffer, hashed in one call.
  std::string row;
  sqlite3_stmt* h = s.handle();
  int columns = s.columns();
  while (s.step()) {
    row.clear();
    for (int c = 0; c < columns; ++c) {
      int type = sqlite3_column_type(h, c);
      row += static_cast<char>(type);
      if (type == SQLITE_INTEGER) {
        int64_t v = sqlite3_column_int64(h, c);
        row.append(reinterpret_cast<const char*>(&v), sizeof v);
      } else if (type == SQLITE_FLOAT) {
        double v = sqlite3_column_double(h, c);
        row.append(reinterpret_cast<const char*>(&v), sizeof v);
      } else if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
        const char* p = type == SQLITE_TEXT ? reinterpret_cast<const char*>(sqlite3_column_text(h, c))
                                            : static_cast<const char*>(sqlite3_column_blob(h, c));
        uint32_t n = static_cast<uint32_t>(sqlite3_column_bytes(h, c));
        row.append(reinterpret_cast<const char*>(&n), sizeof n);
        if (n) row.append(p, n);
      }
    }
    sum += XXH3_64bits(row.data(), row.size());  // wraps: a sum modulo 2^64, independent of row order
    ++count;
  }
  counted_ = count;
  std::string out = std::to_string(count) + ":" + std::to_string(sum);
  if (!scoped) memo_[select] = out;
  return out;
}

namespace {

// The table's own columns read (lookup values come from their tables), and the lookups' match columns.
std::string table_select(const plan::TablePlan& t) {
  std::string cols;
  for (const auto& c : t.columns) {
    if (c.lookup < 0) cols += (cols.empty() ? "t." : ", t.") + quote_ident(c.name);
  }
  for (const auto& l : t.lookups) {
    for (const auto& m : l.match) cols += (cols.empty() ? "t." : ", t.") + quote_ident(m);
  }
  // The scope exactly as the row reader applies it.
  return "SELECT " + (cols.empty() ? std::string("1") : cols) + " FROM main." + quote_ident(t.source.name) +
         " AS t" + scope_where(t);
}

std::string lookup_select(const plan::ResolvedLookup& l) {
  std::string lc;
  for (const auto& m : l.match) lc += quote_ident(m) + ", ";
  return "SELECT " + lc + quote_ident(l.take) + " FROM main." + quote_ident(l.from.name);
}

}  // namespace

std::string StoredDigest::shape(const plan::TablePlan& t) const {
  std::string shape;
  for (const auto& c : t.columns) shape += c.name + " " + c.target.base_type + " " + std::to_string(c.lookup) + ";";
  for (const auto& [column, value] : t.scope) shape += "scope " + column + "=" + value + ";";
  shape += "key:";
  for (const auto& k : t.key) shape += k + ",";
  shape += "tz:" + timezone_ + ";" + table_select(t);
  for (const auto& l : t.lookups) shape += ";" + lookup_select(l);
  return std::to_string(XXH3_64bits(shape.data(), shape.size())) + "/";
}

std::string StoredDigest::of(const plan::TablePlan& t) {
  std::string digest = rows(table_select(t), &t);
  rows_ = static_cast<int64_t>(counted_);
  for (const auto& l : t.lookups) digest += "|" + rows(lookup_select(l));
  return shape(t) + digest;
}

}  // namespace stagesync::source::sqlite_source
