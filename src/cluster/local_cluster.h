// A throwaway PostgreSQL server: initdb into a fresh directory, its own free
// port and socket directory, stopped and removed when the object dies (unless
// keep() was called). Used by `stagesync demo` and by the test harness.
//
// initdb and postgres refuse to run as root; when stagesync runs as root the
// server runs as the unprivileged `postgres` system user instead.
#pragma once

#include <string>

namespace stagesync::cluster {

class LocalCluster {
 public:
  // Creates, initialises and starts a server. Throws std::runtime_error with
  // the tail of the server log when any step fails.
  explicit LocalCluster(const std::string& name_hint = "stagesync");
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  int port() const { return port_; }
  const std::string& directory() const { return dir_; }
  // libpq conninfo for a database on this server (TCP on 127.0.0.1).
  std::string conninfo(const std::string& dbname = "postgres") const;
  std::string url(const std::string& dbname = "postgres") const;

  void create_database(const std::string& dbname);
  // pg_ctl restart with the given shutdown mode ("fast" or "immediate").
  void restart(const std::string& mode = "fast");
  void stop(const std::string& mode = "fast");
  void start();
  bool running() const { return running_; }
  // Leave the server running and its directory in place after destruction.
  void keep() { keep_ = true; }

  // Directory holding initdb, pg_ctl and postgres (STAGESYNC_PG_BINDIR, else
  // the newest /usr/lib/postgresql/*/bin).
  static std::string find_bindir();

 private:
  void pg_ctl(const std::string& action, const std::string& mode);
  std::string log_tail() const;

  std::string bindir_;
  std::string dir_;
  int port_ = 0;
  bool running_ = false;
  bool keep_ = false;
};

// A TCP port on 127.0.0.1 that nothing listens on right now.
int free_port();

}  // namespace stagesync::cluster
