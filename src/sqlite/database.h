// A SQLite file, opened read-only: stagesync never creates, writes or changes the journal mode of a desktop
// application's file.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <string>

#include "sqlite/error.h"

namespace stagesync::sqlite {

class Database {
 public:
  // Opens PATH with SQLITE_OPEN_READONLY | SQLITE_OPEN_URI and reads its schema right away, so that a file that is
  // not a database fails here. A lock held by another program is waited for up to `busy_wait` (SQLite's busy
  // timeout, which also applies to every later read). Throws Error: Missing, NotDatabase (also for an empty file:
  // SQLite would take it for an empty database, no application leaves one), Corrupt, Busy, Other.
  explicit Database(const std::string& path, std::chrono::milliseconds busy_wait = std::chrono::seconds(10));

  sqlite3* handle() const { return db_.get(); }
  const std::string& path() const { return path_; }
  std::chrono::milliseconds busy_wait() const { return busy_wait_; }
  // The file was in WAL journal mode when it was opened.
  bool wal() const { return wal_; }
  // Asks the file again: its application may switch modes between runs.
  bool wal_now() const;

 private:
  struct Close {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  std::string path_;
  std::chrono::milliseconds busy_wait_;
  std::unique_ptr<sqlite3, Close> db_;
  bool wal_ = false;
};

}  // namespace stagesync::sqlite
