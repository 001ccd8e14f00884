// Process-wide interruption (SIGINT, SIGTERM).
//
// The handler records the request and cancels the statement running on every
// open connection (PQcancel is async-signal-safe), so a long COPY or apply
// stops within moments; the exception that follows unwinds to the command's
// normal failure path, which rolls back and cleans up. Nothing is committed
// after an interrupt: code about to COMMIT calls throw_if_interrupted() first.
#pragma once

#include <libpq-fe.h>

#include <stdexcept>

namespace stagesync::pg {

class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted by a signal; the run was rolled back and nothing was changed") {}
};

void install_signal_handlers();
// From now on a second SIGINT/SIGTERM ends the process at once (_exit(130)):
// the server rolls back an open transaction when the connection drops, and
// releases the run lock; the next run drops the staging tables and marks the
// run record abandoned. `stagesync run` asks for this.
void abort_on_second_signal();
bool interrupted();
void throw_if_interrupted();

// Connections register their cancel handles while open.
void register_cancel(PGcancel* cancel);
void unregister_cancel(PGcancel* cancel);

}  // namespace stagesync::pg
