#include "logical/change_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace stagesync::logical {
namespace {

// Memory a change holds, roughly: its strings plus per-object overhead.
size_t estimate(const Change& c) {
  size_t n = sizeof(Change) + c.relation.schema.size() + c.relation.name.size();
  for (const auto* cols : {&c.new_values, &c.old_key})
    for (const auto& v : *cols)
      n += sizeof(ColumnValue) + v.name.size() + v.type.size() + (v.value ? v.value->size() : 0);
  for (const auto& s : c.unchanged_toast) n += sizeof(std::string) + s.size();
  return n;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_str(std::string& out, const std::string& s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out += s;
}
void put_columns(std::string& out, const std::vector<ColumnValue>& cols) {
  put_u32(out, static_cast<uint32_t>(cols.size()));
  for (const auto& c : cols) {
    put_str(out, c.name);
    put_str(out, c.type);
    out.push_back(c.value ? 1 : 0);
    if (c.value) put_str(out, *c.value);
  }
}

// Reads the record format written by ChangeSpool::write.
class RecordReader {
 public:
  RecordReader(const char* p, size_t n) : p_(p), end_(p + n) {}
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p_[i])) << (8 * i);
    p_ += 4;
    return v;
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(*p_++);
  }
  std::string str() {
    uint32_t n = u32();
    need(n);
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  std::vector<ColumnValue> columns() {
    std::vector<ColumnValue> cols(u32());
    for (auto& c : cols) {
      c.name = str();
      c.type = str();
      if (u8()) c.value = str();
    }
    return cols;
  }

 private:
  void need(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) throw std::runtime_error("change spool file is damaged (short record)");
  }
  const char* p_;
  const char* end_;
};

std::FILE* open_spill_file(const std::string& directory) {
  if (directory.empty()) {
    std::FILE* f = std::tmpfile();
    if (!f)
      throw std::runtime_error(std::string("cannot create a temporary file for a large transaction: ") +
                               std::strerror(errno));
    return f;
  }
  int fd = open(directory.c_str(), O_TMPFILE | O_RDWR, 0600);
  if (fd < 0) {
    throw std::runtime_error("cannot create a temporary file in " + directory +
                             " for a large transaction: " + std::strerror(errno));
  }
  std::FILE* f = fdopen(fd, "w+b");
  if (!f) {
    close(fd);
    throw std::runtime_error("cannot open the temporary file in " + directory);
  }
  return f;
}

}  // namespace

ChangeSpool::ChangeSpool(SpoolLimits limits) : limits_(std::move(limits)) {}

void ChangeSpool::append(Change change) {
  ++count_;
  if (file_) {
    write(change);
    return;
  }
  memory_bytes_ += estimate(change);
  memory_.push_back(std::move(change));
  peak_bytes_ = std::max(peak_bytes_, memory_bytes_);
  peak_changes_ = std::max(peak_changes_, memory_.size());
  if (memory_.size() > limits_.max_changes || memory_bytes_ > limits_.max_bytes) spill();
}

void ChangeSpool::spill() {
  file_.reset(open_spill_file(limits_.directory));
  for (const auto& c : memory_) write(c);
  memory_.clear();
  memory_.shrink_to_fit();
  memory_bytes_ = 0;
}

void ChangeSpool::write(const Change& c) {
  std::string rec;
  rec.push_back(static_cast<char>(c.kind));
  put_str(rec, c.relation.schema);
  put_str(rec, c.relation.name);
  put_columns(rec, c.new_values);
  put_columns(rec, c.old_key);
  rec.push_back(c.no_old_key ? 1 : 0);
  put_u32(rec, static_cast<uint32_t>(c.unchanged_toast.size()));
  for (const auto& s : c.unchanged_toast) put_str(rec, s);
  std::string framed;
  put_u32(framed, static_cast<uint32_t>(rec.size()));
  framed += rec;
  if (std::fwrite(framed.data(), 1, framed.size(), file_.get()) != framed.size()) {
    throw std::runtime_error(std::string("cannot write a large transaction's changes to its temporary file: ") +
                             std::strerror(errno));
  }
  file_bytes_ += framed.size();
}

ChangeSpool::Reader ChangeSpool::reader() const {
  if (file_ && std::fflush(file_.get()) != 0) {
    throw std::runtime_error(std::string("cannot flush a large transaction's temporary file: ") + std::strerror(errno));
  }
  return Reader(*this);
}

ChangeSpool::Reader::Reader(const ChangeSpool& spool) : spool_(spool) {}

bool ChangeSpool::Reader::fill(size_t need) {
  if (buf_.size() - pos_ >= need) return true;
  buf_.erase(0, pos_);
  pos_ = 0;
  int fd = fileno(spool_.file_.get());
  while (buf_.size() < need) {
    size_t want = std::max<size_t>(need - buf_.size(), 1 << 16);
    size_t old = buf_.size();
    buf_.resize(old + want);
    ssize_t got = pread(fd, buf_.data() + old, want, static_cast<off_t>(offset_));
    if (got < 0)
      throw std::runtime_error(std::string("cannot read a large transaction's temporary file: ") +
                               std::strerror(errno));
    buf_.resize(old + static_cast<size_t>(got));
    offset_ += static_cast<uint64_t>(got);
    if (got == 0) return false;
  }
  return true;
}

bool ChangeSpool::Reader::next(Change& out) {
  if (!spool_.file_) {
    if (index_ >= spool_.memory_.size()) return false;
    out = spool_.memory_[index_++];
    return true;
  }
  if (!fill(4)) {
    if (buf_.size() != pos_) throw std::runtime_error("change spool file is damaged (partial record)");
    return false;
  }
  uint32_t len = RecordReader(buf_.data() + pos_, 4).u32();
  if (!fill(4 + static_cast<size_t>(len))) throw std::runtime_error("change spool file is damaged (partial record)");
  RecordReader r(buf_.data() + pos_ + 4, len);
  pos_ += 4 + len;
  Change c;
  c.kind = static_cast<ChangeKind>(r.u8());
  c.relation.schema = r.str();
  c.relation.name = r.str();
  c.new_values = r.columns();
  c.old_key = r.columns();
  c.no_old_key = r.u8() != 0;
  c.unchanged_toast.resize(r.u32());
  for (auto& s : c.unchanged_toast) s = r.str();
  out = std::move(c);
  return true;
}

}  // namespace stagesync::logical
