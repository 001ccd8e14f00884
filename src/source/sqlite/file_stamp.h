// Whether a SQLite file (with its write-ahead log) is untouched since an
// earlier look: the device, inode, size and modification time (nanoseconds)
// of the file and of its `-wal`, and the file's status-change time (which no
// program can set back; the -wal's moves when a reader opens it as root).
// Any write by any program moves the modification time, so equal stamps
// mean the same bytes, hence the same rows.
//
// The "racy" case, as in git's index: a write within the same clock tick as
// the last one may leave the times unchanged. A stamp whose newest time is
// less than two seconds before the look is therefore never trusted (racy()),
// and a later write always moves the times past a trusted stamp's.
//
// Take the stamp BEFORE the read snapshot: a write between the two moves the
// times, so an equal stamp next time still means "nothing since the snapshot".
#pragma once

#include <string>

namespace stagesync::source::sqlite_source {

struct FileStamp {
  std::string text;    // comparable; empty when the file cannot be stat'ed
  bool racy = true;    // modified less than 2 s before the stamp was taken

  static FileStamp of(const std::string& path);
};

}  // namespace stagesync::source::sqlite_source
