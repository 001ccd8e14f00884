#include "sqlite/database.h"

#include <filesystem>

#include "sqlite/statement.h"

namespace stagesync::sqlite {

namespace fs = std::filesystem;

Database::Database(const std::string& path, std::chrono::milliseconds busy_wait) : path_(path), busy_wait_(busy_wait) {
  // A "file:" URI names its file inside; SQLite reports its absence as SQLITE_CANTOPEN (Other).
  if (path.rfind("file:", 0) != 0) {
    std::error_code ec;
    fs::file_status st = fs::status(path, ec);
    if (!fs::exists(st)) throw Error(Error::Kind::Missing, path + ": no such file");
    if (fs::is_directory(st)) throw Error(Error::Kind::NotDatabase, path + " is a folder, not a SQLite database");
    if (fs::is_regular_file(st) && fs::file_size(path, ec) == 0 && !ec)
      throw Error(Error::Kind::NotDatabase, path + " is empty: not a SQLite database");
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  db_.reset(db);  // closed by the destructor of db_ even when this constructor throws
  if (rc != SQLITE_OK) throw error_for(rc, db, path, "opening it", std::chrono::milliseconds(0));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(busy_wait.count()));
  // The first read: checks the header (NotDatabase), parses the schema (Corrupt) and waits out a writer's lock
  // (Busy). The statement ends here, so no read transaction stays open.
  Statement(*this, "SELECT count(*) FROM main.sqlite_master").step();
  wal_ = wal_now();
}

bool Database::wal_now() const {
  Statement mode(*this, "PRAGMA main.journal_mode");  // a question: without "= MODE" it changes nothing
  return mode.step() && mode.text(0) == "wal";
}

}  // namespace stagesync::sqlite
