// A chain of COPYs into the target sent as one simple-protocol message
// ("COPY a FROM STDIN; ANALYZE a; COPY b FROM STDIN; ..."), each filled in
// turn by its source (pg::CopyIn::next()): a PostgreSQL source pipes its own
// COPY ... TO STDOUT, a SQLite source writes the rows it converted. The first COPY costs two round trips, each after it
// one (the end of one COPY and the start of the next are answered together),
// whatever the number of tables the copies belong to.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "stage/staging_table.h"

namespace stagesync::stage {

class CopyChain {
 public:
  struct Copy {
    CopyFill fill;                   // writes the rows (in copy_in's format)
    std::string copy_in;             // COPY ... FROM STDIN on the target
    std::vector<std::string> after;  // statements run right after it, in the same message
    // Called once the copy and its `after` statements ran: rows copied, and
    // the rows each `after` statement affected (pg::CopyIn::after()).
    std::function<void(int64_t rows, const std::vector<int64_t>& after)> done;
  };

  void add(Copy copy) { copies_.push_back(std::move(copy)); }
  bool empty() const { return copies_.empty(); }

  // Runs every copy, in the order added, then empties the chain. The
  // target's deferred statements go first in the message (they must be
  // plain: pg::Connection::deferred_plain()). An error on either side is
  // thrown; the rest of the message never runs.
  void run(pg::Connection& target);

 private:
  std::vector<Copy> copies_;
};

}  // namespace stagesync::stage
