// A real PgBouncer for the tests, in front of a test server (servers.h): its
// own temp directory with a generated pgbouncer.ini and auth file
// (auth_type = trust: the loopback server trusts every local connection
// anyway), its own free port, run as the `postgres` system user when the
// tests run as root (pgbouncer, like postgres, refuses root), stopped and
// removed when the object dies. A missing pgbouncer binary is a test failure
// (std::runtime_error naming the package), never a skip.
#pragma once

#include <sys/types.h>

#include <string>

#include "cluster/local_cluster.h"

namespace stagesync::testing {

class Pooler {
 public:
  enum class Mode { Session, Transaction, Statement };

  struct Options {
    Mode mode = Mode::Transaction;
    int pool_size = 4;  // default_pool_size: server connections per database and user
    // PgBouncer hands out the most recently used idle server connection
    // (LIFO) unless this is set; then the least recently used (FIFO).
    bool round_robin = false;
  };

  // Starts pgbouncer and waits until it accepts connections. Throws
  // std::runtime_error (with the tail of its log) when it cannot.
  Pooler(cluster::LocalCluster& server, const Options& options);
  ~Pooler();
  Pooler(const Pooler&) = delete;
  Pooler& operator=(const Pooler&) = delete;

  int port() const { return port_; }
  Mode mode() const { return options_.mode; }
  // A database of the server, reached through the pooler.
  std::string url(const std::string& dbname) const;
  std::string conninfo(const std::string& dbname) const;
  // Stops pgbouncer (SIGTERM: immediate shutdown; SIGKILL if it lingers). Idempotent.
  void stop() noexcept;

  // The pgbouncer program (STAGESYNC_PGBOUNCER, else on PATH, else /usr/sbin).
  static std::string find_binary();

 private:
  std::string log_tail() const;

  Options options_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace stagesync::testing
