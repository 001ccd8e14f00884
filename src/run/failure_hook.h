// `stagesync run --on-failure CMD`: after a failed cycle, CMD runs through
// /bin/sh with the failure summary on its standard input (a mail or chat
// notifier). It never blocks the sync: it runs in a child process of its own,
// is killed (with everything it started) after the timeout, and its exit
// status is only reported. A notifier that fails, hangs or crashes is a
// warning, never a failure of the sync.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "report/reporter.h"
#include "schedule/duration.h"

namespace stagesync::run {

class FailureHook {
 public:
  FailureHook(std::string command, schedule::Duration timeout) : command_(std::move(command)), timeout_(timeout) {}
  bool enabled() const { return !command_.empty(); }
  // Starts CMD with `summary` on its standard input and returns at once.
  void notify(const std::string& summary, report::Reporter& out);
  // Reports notifiers that have ended since the last call (never waits).
  void reap(report::Reporter& out);

 private:
  std::string command_;
  schedule::Duration timeout_;
  std::vector<pid_t> running_;
};

}  // namespace stagesync::run
