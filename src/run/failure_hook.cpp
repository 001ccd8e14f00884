#include "run/failure_hook.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace stagesync::run {
namespace {

// Exit statuses of the notifier process (its own, not CMD's).
constexpr int kTimedOut = 124;
constexpr int kCannotStart = 125;

void write_all(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // CMD closed its input early: not an error
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// In the forked notifier (single-threaded copy of stagesync): runs CMD in a
// process group of its own, feeds it `summary`, waits at most `timeout`.
// Only _exit() leaves it: the parent's connections and buffers are not ours.
[[noreturn]] void notifier(const std::string& command, const std::string& summary, schedule::Duration timeout) {
  // stagesync's SIGINT/SIGTERM handlers would cancel the parent's statements.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  int in[2];
  if (pipe(in) != 0) _exit(kCannotStart);
  pid_t cmd = fork();
  if (cmd < 0) _exit(kCannotStart);
  if (cmd == 0) {
    setpgid(0, 0);
    dup2(in[0], STDIN_FILENO);
    closefrom(3);  // the parent's database sockets stay the parent's
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(cmd, cmd);
  close(in[0]);
  write_all(in[1], summary);
  close(in[1]);
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (true) {
    int status = 0;
    pid_t done = waitpid(cmd, &status, WNOHANG);
    if (done == cmd) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (ms >= timeout.count()) {
      kill(-cmd, SIGKILL);
      waitpid(cmd, &status, 0);
      _exit(kTimedOut);
    }
    timespec slice{0, 20 * 1000 * 1000};
    nanosleep(&slice, nullptr);
  }
}

}  // namespace

void FailureHook::notify(const std::string& summary, report::Reporter& out) {
  if (!enabled()) return;
  reap(out);
  pid_t pid = fork();
  if (pid < 0) {
    out.warning("--on-failure: cannot start the notifier (" + std::string(std::strerror(errno)) + ")");
    return;
  }
  if (pid == 0) notifier(command_, summary, timeout_);
  running_.push_back(pid);
}

void FailureHook::reap(report::Reporter& out) {
  for (auto it = running_.begin(); it != running_.end();) {
    int status = 0;
    pid_t done = waitpid(*it, &status, WNOHANG);
    if (done == 0) {
      ++it;
      continue;
    }
    if (done == *it && WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      int code = WEXITSTATUS(status);
      out.warning(code == kTimedOut ? "--on-failure: the command did not finish within " +
                                          schedule::format_duration(timeout_) + " and was killed"
                                    : "--on-failure: the command exited with status " + std::to_string(code));
    }
    it = running_.erase(it);
  }
}

}  // namespace stagesync::run
