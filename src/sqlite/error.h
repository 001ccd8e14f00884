// What went wrong with a SQLite file, typed so that the command line can map it to an exit code and `check` can
// name it. The file's path is always in what().
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace stagesync::sqlite {

class Error : public std::runtime_error {
 public:
  enum class Kind {
    Missing,      // no file at the path
    NotDatabase,  // the file is not a SQLite database (or is empty)
    Corrupt,      // SQLITE_CORRUPT: the file is damaged
    Busy,         // another program held a lock on the file longer than the wait allowed
    Other,        // anything else (an SQL error, I/O, a hot journal a read-only reader cannot roll back)
  };
  Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// The Error for result code `rc` (extended codes included), met on the file at `path` while `doing` (e.g. "reading
// its schema"). `db` (may be null) supplies SQLite's own message; `waited` is the busy wait that was spent, for
// the Busy message.
Error error_for(int rc, sqlite3* db, const std::string& path, const std::string& doing,
                std::chrono::milliseconds waited);

// "10 s", "300 ms": a wait, as messages show it.
std::string wait_text(std::chrono::milliseconds wait);

}  // namespace stagesync::sqlite
