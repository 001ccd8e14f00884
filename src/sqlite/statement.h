// One prepared SQL statement on a Database. Errors name the file and what SQLite said.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "sqlite/database.h"

namespace stagesync::sqlite {

class Statement {
 public:
  // Error (Other, naming the SQL's problem and the path; or NotDatabase, Corrupt, Busy from reading the schema).
  Statement(const Database& db, const std::string& sql);

  void bind_text(int index, const std::string& value);  // 1-based
  void bind_int64(int index, int64_t value);
  // true: a row is ready; false: done. A lock held longer than the database's busy wait: Error(Busy).
  bool step();
  // Back to before the first row, bindings kept.
  void reset();

  int columns() const;
  // 0-based; valid until the next step(). Read it with the accessor that matches sqlite3_value_type(): another
  // one converts the value in place.
  sqlite3_value* value(int column) const;
  bool is_null(int column) const;
  int64_t int64(int column) const;
  std::string text(int column) const;  // "" for NULL
  sqlite3_stmt* handle() const { return stmt_.get(); }

 private:
  struct Finalize {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
  };
  const Database* db_;
  std::string sql_;
  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

// Runs `sql` (one statement) to its end, ignoring rows.
void execute(const Database& db, const std::string& sql);

}  // namespace stagesync::sqlite
