// Process-wide interruption (SIGINT, SIGTERM).
//
// The handler records the request and cancels the statement running on every
// open connection (PQcancel is async-signal-safe), so a long COPY or apply
// stops within moments; the exception that follows unwinds to the command's
// normal failure path, which rolls back and cleans up. Nothing is committed
// after an interrupt: code about to COMMIT calls throw_if_interrupted() first.
//
// A DeferredStop (a `follow` batch) changes what the first signal does: it is
// only recorded, so the work under way commits; the caller stops at its next
// boundary (stop_requested()). A second signal interrupts as above.
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
// A signal cancelled what was running: nothing after it may commit.
bool interrupted();
void throw_if_interrupted();
// A signal arrived: an interruption, or a first signal a DeferredStop held back.
bool stop_requested();

// While one lives, a first SIGINT/SIGTERM neither cancels nor sets interrupted():
// it sets stop_requested() and writes one line to standard error saying the
// process stops once the work under way has committed. A second signal
// interrupts (cancels, interrupted()); with abort_on_second_signal() a third
// ends the process. The request outlives the DeferredStop. Not nested; the
// process's main thread only.
class DeferredStop {
 public:
  DeferredStop();
  ~DeferredStop();
  DeferredStop(const DeferredStop&) = delete;
  DeferredStop& operator=(const DeferredStop&) = delete;
};

// Connections register their cancel handles while open.
void register_cancel(PGcancel* cancel);
void unregister_cancel(PGcancel* cancel);

}  // namespace stagesync::pg
