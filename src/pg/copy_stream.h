// COPY streams over a Connection, after libpqxx's stream_from / stream_to.
//
// CopyOut yields the server's CopyData messages one at a time (for COPY TO
// STDOUT the server sends one message per row, plus the binary trailer).
// CopyIn sends data; finish() completes the COPY and returns the row count.
// A CopyIn destroyed without finish() aborts the COPY: it never commits rows.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "pg/connection.h"

namespace stagesync::pg {

class CopyOut {
 public:
  CopyOut(Connection& conn, std::string_view copy_sql);
  ~CopyOut();
  CopyOut(const CopyOut&) = delete;
  CopyOut& operator=(const CopyOut&) = delete;

  // Next message, valid until the following call; false at the end of data.
  bool next(std::string_view& chunk);

 private:
  Connection& conn_;
  char* buf_ = nullptr;
  bool done_ = false;
};

class CopyIn {
 public:
  CopyIn(Connection& conn, std::string_view copy_sql);
  ~CopyIn();  // aborts when finish() was not called
  CopyIn(const CopyIn&) = delete;
  CopyIn& operator=(const CopyIn&) = delete;

  void write(std::string_view data);
  // Ends the COPY; returns the number of rows the server stored.
  int64_t finish();
  // A chain: `copy_sql` may hold several statements, COPY ... FROM STDIN
  // among them ("COPY a FROM STDIN; ANALYZE a; COPY b FROM STDIN"). After
  // finish(), next() waits for the next COPY of the message to start (true;
  // write() and finish() then serve it) or for the message to end (false).
  // The end of one COPY and the start of the next are answered together: a
  // table after the first costs one round trip instead of two.
  bool next();
  // After finish(): the rows each statement of the message between this COPY
  // and the next one (or the message's end) affected, in order (0 for a
  // statement that writes no rows, such as ANALYZE).
  const std::vector<int64_t>& after() const { return after_; }

 private:
  // Reads the answers after a COPY's own until the next COPY starts or the
  // message ends; throws the first error among them.
  void read_on();
  Connection& conn_;
  bool open_ = true;
  bool next_ready_ = false;  // the next COPY of the message has started
  std::vector<int64_t> after_;
};

}  // namespace stagesync::pg
