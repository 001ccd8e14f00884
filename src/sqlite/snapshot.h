// One consistent state of every table of a SQLite file, for one run, that never blocks the desktop application
// (a writer) for more than a second. Decision 0010.
//  - WAL mode: a read transaction on the file itself (BEGIN and a first read). A WAL reader never blocks a
//    writer; it only keeps the application's checkpoints from passing this snapshot until the destructor.
//  - Rollback-journal mode (DELETE, TRUNCATE, PERSIST, MEMORY, OFF): a read transaction would hold a SHARED
//    lock for the whole run, and the application's COMMIT needs the file to itself. Instead the online backup
//    API copies the file into a temporary file under TMPDIR in steps of about 4 MiB: a step holds the SHARED
//    lock for milliseconds, and between steps the application commits freely. A commit between steps makes
//    SQLite restart the copy; after 3 restarts the rest is copied in one step, which holds the lock for as long
//    as copying the whole file takes (tens of milliseconds for the tens of megabytes desktop files have). Reads
//    go to the copy, which the destructor removes.
#pragma once

#include <memory>
#include <string>

#include "sqlite/database.h"

namespace stagesync::sqlite {

class Snapshot {
 public:
  // Throws Error: Busy (the application held its lock longer than file.busy_wait()), Corrupt, Other (no room
  // for the copy).
  explicit Snapshot(Database& file);
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  ~Snapshot();  // ends the read transaction, or closes and removes the copy

  // The database to read: the file itself (WAL) or the copy.
  Database& reader() { return copy_ ? *copy_ : file_; }
  // For the run's log: "read transaction (WAL)" / "backup copy, N pages (rollback journal)".
  std::string how() const;
  // The copy's path, "" when reading the file itself.
  const std::string& copy_path() const { return copy_path_; }
  // Times a commit by the application restarted the copy (0 in WAL mode).
  int restarts() const { return restarts_; }

  static constexpr int max_restarts = 3;
  static constexpr long step_bytes = 4L << 20;

 private:
  void copy();
  void remove_copy() noexcept;

  Database& file_;
  bool in_transaction_ = false;
  std::string copy_path_;
  std::unique_ptr<Database> copy_;
  int pages_ = 0;
  int restarts_ = 0;
  bool last_in_one_step_ = false;
};

}  // namespace stagesync::sqlite
