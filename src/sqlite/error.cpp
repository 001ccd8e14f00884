#include "sqlite/error.h"

namespace stagesync::sqlite {

std::string wait_text(std::chrono::milliseconds wait) {
  auto ms = wait.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

Error error_for(int rc, sqlite3* db, const std::string& path, const std::string& doing,
                std::chrono::milliseconds waited) {
  std::string said = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_NOTADB:
      return Error(Error::Kind::NotDatabase, path + " is not a SQLite database (" + said + ")");
    case SQLITE_CORRUPT:
      return Error(Error::Kind::Corrupt, path + " is damaged: SQLite reports \"" + said + "\" while " + doing +
                                             "; restore the file from a backup or let its application repair it");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error(Error::Kind::Busy, path + " is in use by another program, which kept it locked while " + doing +
                                          "; waited " + wait_text(waited) +
                                          " for it. Let that program finish what it is doing (or close it) and "
                                          "run again");
    case SQLITE_READONLY:
      if (rc == SQLITE_READONLY_ROLLBACK)
        return Error(Error::Kind::Other, path + " has an unfinished transaction left by a program that stopped (" +
                                             path +
                                             "-journal); a read-only reader cannot roll it back: open the "
                                             "file once with its application, then run again");
      break;
    default:
      break;
  }
  return Error(Error::Kind::Other, path + ": " + said + " (while " + doing + ")");
}

}  // namespace stagesync::sqlite
