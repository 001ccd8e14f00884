// Runs the stagesync binary as a child process, with a deadline.
//
// A test that waits on a hung child would hang CI until its global timeout,
// with nothing to show for it. Every wait here has a deadline
// (STAGESYNC_TEST_PROCESS_TIMEOUT seconds, default 600); past it the child's
// thread stacks are captured with gdb (when installed), the child is killed
// with SIGKILL, and the caller gets `timed_out` and the stacks to report.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace stagesync::testing {

struct ChildExit {
  int code = -1;           // exit status, or 128 + signal number
  bool timed_out = false;  // killed after the deadline
  std::string stacks;      // gdb backtraces taken before the kill, when timed out
};

// Forks and execs `binary` with `args`; stdout and stderr go to the given files.
pid_t start_child(const std::string& binary, const std::vector<std::string>& args, const std::string& out_path,
                  const std::string& err_path);

// Waits for `pid` up to the deadline (seconds; <= 0 means the environment's or 600).
ChildExit wait_child(pid_t pid, double deadline_s = 0);

}  // namespace stagesync::testing
