// Running helper programs (initdb, pg_ctl) without a shell.
#pragma once

#include <string>
#include <vector>

namespace stagesync::cluster {

// The account servers run under: the current user, or `postgres` when root.
struct RunAs {
  bool switch_user = false;
  unsigned uid = 0;
  unsigned gid = 0;
  static RunAs for_server();
};

// In a child just forked to run a server program: standard output and error
// appended to `log_path`, standard input from /dev/null, then the account
// switched to `as` (the child exits with 126 when it cannot be switched).
void prepare_child(const RunAs& as, const std::string& log_path);

// Runs argv[0] with arguments, stdout/stderr appended to `log_path`; returns
// the exit status (or -1 when it could not be started).
int run_program(const std::vector<std::string>& argv, const RunAs& as, const std::string& log_path);

}  // namespace stagesync::cluster
