// A transaction's changes in commit order, in bounded memory: up to
// `max_changes` changes or `max_bytes` (estimated) are kept in memory; past
// either bound every change so far and every later one goes to an unnamed
// temporary file (deleted by the system when closed, even after a crash) and
// is read back in order. A 200,000-row desktop transaction is never held
// whole in RAM.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "logical/change.h"

namespace stagesync::logical {

struct SpoolLimits {
  size_t max_changes = 20000;
  size_t max_bytes = size_t{64} << 20;
  std::string directory;  // for the spill file; empty: the system's temporary directory
};

class ChangeSpool {
 public:
  explicit ChangeSpool(SpoolLimits limits = {});
  ChangeSpool(ChangeSpool&&) noexcept = default;
  ChangeSpool& operator=(ChangeSpool&&) noexcept = default;

  void append(Change change);
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool spilled() const { return file_ != nullptr; }
  uint64_t spilled_bytes() const { return file_bytes_; }
  // The most memory the changes held at once (estimated), for tests and logs.
  size_t peak_memory_bytes() const { return peak_bytes_; }
  size_t peak_memory_changes() const { return peak_changes_; }

  // Reads the changes back in order; several readers may run one after the
  // other (each has its own position), none while appending. A reader refers
  // to its spool: it must not outlive it or be used after the spool moved.
  class Reader {
   public:
    bool next(Change& out);

   private:
    friend class ChangeSpool;
    explicit Reader(const ChangeSpool& spool);
    bool fill(size_t need);
    const ChangeSpool& spool_;
    size_t index_ = 0;     // in memory
    uint64_t offset_ = 0;  // in the file
    std::string buf_;
    size_t pos_ = 0;
  };
  Reader reader() const;

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const {
      if (f) std::fclose(f);
    }
  };
  void spill();
  void write(const Change& c);

  SpoolLimits limits_;
  std::vector<Change> memory_;
  size_t memory_bytes_ = 0;
  size_t peak_bytes_ = 0;
  size_t peak_changes_ = 0;
  size_t count_ = 0;
  std::unique_ptr<std::FILE, FileCloser> file_;
  uint64_t file_bytes_ = 0;
};

}  // namespace stagesync::logical
