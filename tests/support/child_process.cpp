#include "support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace stagesync::testing {
namespace {

int decode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

double default_deadline() {
  const char* v = std::getenv("STAGESYNC_TEST_PROCESS_TIMEOUT");
  double d = v && *v ? std::atof(v) : 0;
  return d > 0 ? d : 600;
}

std::string capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (!p) return "(cannot run: " + command + ")";
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  pclose(p);
  return out;
}

}  // namespace

pid_t start_child(const std::string& binary, const std::vector<std::string>& args, const std::string& out_path,
                  const std::string& err_path) {
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargs;
  for (auto& a : argv) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  return pid;
}

ChildExit wait_child(pid_t pid, double deadline_s) {
  if (deadline_s <= 0) deadline_s = default_deadline();
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(deadline_s);
  ChildExit e;
  int status = 0;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      e.code = decode(status);
      return e;
    }
    if (r < 0) return e;  // not our child (already reaped)
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  e.timed_out = true;
  std::string pid_s = std::to_string(pid);
  e.stacks = capture("command -v gdb >/dev/null && gdb -batch -nx -p " + pid_s +
                     " -ex 'thread apply all bt' 2>&1 | grep -E '^(#|Thread)'; ls -l /proc/" + pid_s +
                     "/fd 2>&1; cat /proc/" + pid_s + "/wchan 2>&1");
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  e.code = decode(status);
  return e;
}

}  // namespace stagesync::testing
