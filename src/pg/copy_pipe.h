// Moves the rows of a COPY ... TO STDOUT on one server into a COPY ... FROM
// STDIN on another, message by message: memory stays bounded by one message
// whatever the row count, and no row is decoded on the way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "pg/connection.h"
#include "pg/copy_stream.h"

namespace stagesync::pg {

// Called while rows stream: rows so far.
using ProgressFn = std::function<void(int64_t rows)>;

// Runs `copy_out` on `from` and `copy_in` on `to` (same format on both sides);
// returns the rows the receiving server loaded. Throws pg::Error from either
// side; an unfinished COPY IN is aborted, never completed.
int64_t pipe_copy(pg::Connection& from, const std::string& copy_out, pg::Connection& to, const std::string& copy_in,
                  const ProgressFn& progress = nullptr);
// The same into a COPY already started on the receiving side (a chain's, pg::CopyIn::next()).
int64_t pipe_copy(pg::Connection& from, const std::string& copy_out, pg::CopyIn& in, const ProgressFn& progress);

}  // namespace stagesync::pg
