#include "sqlite/snapshot.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "sqlite/statement.h"

namespace stagesync::sqlite {

namespace fs = std::filesystem;

namespace {

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct FinishBackup {
  void operator()(sqlite3_backup* b) const { sqlite3_backup_finish(b); }
};

std::string temporary_directory() {
  std::error_code ec;
  fs::path dir = fs::temp_directory_path(ec);  // TMPDIR, else /tmp
  return ec ? std::string("/tmp") : dir.string();
}

}  // namespace

Snapshot::Snapshot(Database& file) : file_(file) {
  if (file.wal_now()) {
    execute(file, "BEGIN");
    in_transaction_ = true;
    try {
      // The read transaction starts at its first read, and sees the file as of that instant until it ends.
      execute(file, "SELECT count(*) FROM main.sqlite_master");
    } catch (...) {
      sqlite3_exec(file.handle(), "ROLLBACK", nullptr, nullptr, nullptr);  // best effort: the error is thrown
      throw;
    }
    return;
  }
  try {
    copy();
  } catch (...) {
    remove_copy();
    throw;
  }
}

void Snapshot::copy() {
  long page_size = 4096;
  {
    // Finished before the copy starts: a statement left open would hold the file's SHARED lock throughout.
    Statement size(file_, "PRAGMA main.page_size");
    if (size.step()) page_size = size.int64(0);
  }
  int step_pages = static_cast<int>(std::max(1L, step_bytes / std::max(512L, page_size)));

  std::string pattern = temporary_directory() + "/stagesync-sqlite-XXXXXX";
  int fd = mkstemp(pattern.data());  // mode 0600: the copy holds the application's data
  if (fd < 0)
    throw Error(Error::Kind::Other, "cannot create a temporary copy of " + file_.path() + " in " +
                                        temporary_directory() + ": " + std::strerror(errno));
  close(fd);
  copy_path_ = pattern;

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(copy_path_.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<sqlite3, CloseDb> dest(raw);
  if (rc != SQLITE_OK) throw error_for(rc, raw, copy_path_, "creating a copy of " + file_.path(), {});
  // The copy is thrown away after the run: no journal, no syncs.
  sqlite3_exec(raw, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF", nullptr, nullptr, nullptr);

  std::unique_ptr<sqlite3_backup, FinishBackup> backup(sqlite3_backup_init(raw, "main", file_.handle(), "main"));
  if (!backup) throw error_for(sqlite3_errcode(raw), raw, copy_path_, "starting a copy of " + file_.path(), {});

  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> busy_since;
  int done_before = 0;
  while (true) {
    last_in_one_step_ = restarts_ >= max_restarts;
    rc = sqlite3_backup_step(backup.get(), last_in_one_step_ ? -1 : step_pages);
    if (rc == SQLITE_DONE) break;
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
      // The application holds its lock (SQLite's busy handler already waited on it; not in every version, so
      // the wait is bounded here too).
      auto now = Clock::now();
      if (!busy_since) busy_since = now;
      auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - *busy_since);
      if (waited >= file_.busy_wait())
        throw error_for(SQLITE_BUSY, nullptr, file_.path(), "copying it", file_.busy_wait());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (rc != SQLITE_OK) throw error_for(rc, file_.handle(), file_.path(), "copying it", file_.busy_wait());
    busy_since.reset();
    // A step copies the next pages; a step that starts over (the application committed since the last one)
    // copies the first pages again, so it ends no further than the last one did.
    int done = sqlite3_backup_pagecount(backup.get()) - sqlite3_backup_remaining(backup.get());
    if (done_before > 0 && done <= done_before) ++restarts_;
    done_before = done;
  }
  pages_ = sqlite3_backup_pagecount(backup.get());
  rc = sqlite3_backup_finish(backup.release());
  if (rc != SQLITE_OK) throw error_for(rc, raw, copy_path_, "finishing the copy of " + file_.path(), {});
  dest.reset();
  copy_ = std::make_unique<Database>(copy_path_, file_.busy_wait());
}

std::string Snapshot::how() const {
  if (!copy_) return "read transaction (WAL)";
  std::string s = "backup copy, " + std::to_string(pages_) + " pages (rollback journal)";
  if (restarts_ > 0)
    s += ", restarted " + std::to_string(restarts_) + " times by writes" +
         (last_in_one_step_ ? ", the last copy in one step" : "");
  return s;
}

void Snapshot::remove_copy() noexcept {
  copy_.reset();
  if (copy_path_.empty()) return;
  std::error_code ec;  // best effort: a leftover in TMPDIR is not an error of the run
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(copy_path_ + suffix, ec);
}

Snapshot::~Snapshot() {
  // Ending a read transaction cannot fail in a way that matters: closing the connection would end it too.
  if (in_transaction_) sqlite3_exec(file_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  remove_copy();
}

}  // namespace stagesync::sqlite
