#include "pg/interrupt.h"

#include <atomic>
#include <unistd.h>

#include <csignal>

namespace stagesync::pg {
namespace {

constexpr int kSlots = 16;
std::atomic<PGcancel*> g_cancel[kSlots];
volatile std::sig_atomic_t g_interrupted = 0;
volatile std::sig_atomic_t g_abort_on_second = 0;
volatile std::sig_atomic_t g_deferring = 0;       // a DeferredStop lives
volatile std::sig_atomic_t g_stop_requested = 0;  // any signal so far

constexpr char kDeferredNotice[] =
    "stagesync: signal received: stopping once the batch under way has committed (a second signal cancels it)\n";

extern "C" void on_signal(int) {
  if (g_deferring && !g_stop_requested) {
    g_stop_requested = 1;
    // write() is async-signal-safe; a failed write loses only the notice.
    ssize_t ignored = write(STDERR_FILENO, kDeferredNotice, sizeof kDeferredNotice - 1);
    (void)ignored;
    return;
  }
  g_stop_requested = 1;
  if (g_interrupted && g_abort_on_second) _exit(130);
  g_interrupted = 1;
  char err[256];
  for (auto& slot : g_cancel) {
    if (PGcancel* c = slot.load()) PQcancel(c, err, sizeof err);
  }
}

}  // namespace

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed stdout (`stagesync demo | head`) must not kill the process
  // before it has stopped its servers and rolled back: writes just fail.
  signal(SIGPIPE, SIG_IGN);
}

void abort_on_second_signal() { g_abort_on_second = 1; }

bool interrupted() { return g_interrupted != 0; }

void throw_if_interrupted() {
  if (interrupted()) throw Interrupted();
}

bool stop_requested() { return g_stop_requested != 0; }

DeferredStop::DeferredStop() { g_deferring = 1; }

DeferredStop::~DeferredStop() { g_deferring = 0; }

void register_cancel(PGcancel* cancel) {
  for (auto& slot : g_cancel) {
    PGcancel* expected = nullptr;
    if (slot.compare_exchange_strong(expected, cancel)) return;
  }
  // More connections than slots: this one just cannot be cancelled early.
}

void unregister_cancel(PGcancel* cancel) {
  for (auto& slot : g_cancel) {
    PGcancel* expected = cancel;
    if (slot.compare_exchange_strong(expected, nullptr)) return;
  }
}

}  // namespace stagesync::pg
