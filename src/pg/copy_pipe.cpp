#include "pg/copy_pipe.h"

#include "pg/copy_stream.h"

namespace stagesync::pg {
namespace {

int64_t stream(pg::CopyOut& out, pg::CopyIn& in, const ProgressFn& progress) {
  // The server sends one CopyData message per row, plus one for the trailer.
  int64_t messages = 0;
  std::string_view chunk;
  while (out.next(chunk)) {
    in.write(chunk);
    if ((++messages & 0x3FFF) == 0 && progress) progress(messages);
  }
  int64_t rows = in.finish();
  if (progress) progress(rows);
  return rows;
}

}  // namespace

int64_t pipe_copy(pg::Connection& from, const std::string& copy_out, pg::Connection& to, const std::string& copy_in,
                  const ProgressFn& progress) {
  pg::CopyOut out(from, copy_out);
  pg::CopyIn in(to, copy_in);
  return stream(out, in, progress);
}

int64_t pipe_copy(pg::Connection& from, const std::string& copy_out, pg::CopyIn& in, const ProgressFn& progress) {
  pg::CopyOut out(from, copy_out);
  return stream(out, in, progress);
}

}  // namespace stagesync::pg
