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

extern "C" void on_signal(int) {
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
