#include "cluster/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

namespace stagesync::cluster {

RunAs RunAs::for_server() {
  RunAs as;
  if (geteuid() != 0) return as;
  const passwd* pw = getpwnam("postgres");
  if (!pw) {
    throw std::runtime_error(
        "running as root, and PostgreSQL refuses to run as root, but there is no 'postgres' user to run it as "
        "(install the postgresql-15 package: scripts/install-deps.sh)");
  }
  as.switch_user = true;
  as.uid = pw->pw_uid;
  as.gid = pw->pw_gid;
  return as;
}

void prepare_child(const RunAs& as, const std::string& log_path) {
  int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    dup2(devnull, 0);
    close(devnull);
  }
  if (as.switch_user && (setgroups(0, nullptr) != 0 || setgid(as.gid) != 0 || setuid(as.uid) != 0)) _exit(126);
}

int run_program(const std::vector<std::string>& argv, const RunAs& as, const std::string& log_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prepare_child(as, log_path);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace stagesync::cluster
