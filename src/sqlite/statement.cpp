#include "sqlite/statement.h"

namespace stagesync::sqlite {

namespace {
// The SQL as messages show it: one line, at most about 80 characters.
std::string sql_for_message(const std::string& sql) {
  std::string out;
  for (char c : sql) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out;
}
}  // namespace

Statement::Statement(const Database& db, const std::string& sql) : db_(&db), sql_(sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db.handle(), sql.c_str(), static_cast<int>(sql.size()), &s, nullptr);
  stmt_.reset(s);
  if (rc != SQLITE_OK)
    throw error_for(rc, db.handle(), db.path(), "preparing `" + sql_for_message(sql) + "`", db.busy_wait());
}

void Statement::bind_text(int index, const std::string& value) {
  int rc = sqlite3_bind_text(stmt_.get(), index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK)
    throw error_for(rc, db_->handle(), db_->path(), "binding parameter " + std::to_string(index), db_->busy_wait());
}

void Statement::bind_int64(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_.get(), index, value);
  if (rc != SQLITE_OK)
    throw error_for(rc, db_->handle(), db_->path(), "binding parameter " + std::to_string(index), db_->busy_wait());
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = error_for(rc, db_->handle(), db_->path(), "reading `" + sql_for_message(sql_) + "`", db_->busy_wait());
  sqlite3_reset(stmt_.get());
  throw e;
}

void Statement::reset() { sqlite3_reset(stmt_.get()); }

int Statement::columns() const { return sqlite3_column_count(stmt_.get()); }

sqlite3_value* Statement::value(int column) const { return sqlite3_column_value(stmt_.get(), column); }

bool Statement::is_null(int column) const { return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL; }

int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_.get(), column); }

std::string Statement::text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_.get(), column);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), column)));
}

void execute(const Database& db, const std::string& sql) {
  Statement s(db, sql);
  while (s.step()) {
  }
}

}  // namespace stagesync::sqlite
