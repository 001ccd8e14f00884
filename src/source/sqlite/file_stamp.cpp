#include "source/sqlite/file_stamp.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>

namespace stagesync::source::sqlite_source {
namespace {

int64_t nanos(const struct timespec& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec; }

}  // namespace

FileStamp FileStamp::of(const std::string& path) {
  FileStamp s;
  struct timespec now {};
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t newest = 0;
  for (const std::string& p : {path, path + "-wal"}) {
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) {
      if (p == path) return FileStamp{};  // the file itself must be there
      s.text += "|no wal";
      continue;
    }
    if (p != path && st.st_size == 0) {
      // An empty -wal holds nothing (a reader's open creates one): the same as none.
      s.text += "|no wal";
      continue;
    }
    // The -wal's status-change time moves when a reader opens it (SQLite gives it the database's owner
    // when run as root), so only its modification time counts; the file's both.
    bool wal = p != path;
    s.text += "|" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) +
              ":" + std::to_string(nanos(st.st_mtim)) + (wal ? std::string() : ":" + std::to_string(nanos(st.st_ctim)));
    newest = std::max({newest, nanos(st.st_mtim), wal ? int64_t{0} : nanos(st.st_ctim)});
  }
  s.racy = nanos(now) - newest < int64_t{2} * 1000000000;
  return s;
}

}  // namespace stagesync::source::sqlite_source
