// Real PostgreSQL servers for the tests: one playing the desktop (source),
// one the cloud (target), each started by the harness (initdb into a temp
// dir, own free port) and stopped at the end. A missing server binary is a
// test failure, never a skip.
#pragma once

#include <memory>
#include <string>

#include "cluster/local_cluster.h"
#include "pg/connection.h"

namespace stagesync::testing {

class Servers {
 public:
  static cluster::LocalCluster& source();
  static cluster::LocalCluster& target();
  // A desktop server of its own with wal_level = logical (logical decoding,
  // `follow`), started on first use; the source server keeps the default.
  static cluster::LocalCluster& logical();
  // Stops every server started (called by the gtest environment at the end).
  static void shutdown();
};

// A fresh, uniquely named database on `server`; dropped on destruction.
class TempDatabase {
 public:
  TempDatabase(cluster::LocalCluster& server, const std::string& prefix);
  ~TempDatabase();
  TempDatabase(const TempDatabase&) = delete;
  TempDatabase& operator=(const TempDatabase&) = delete;

  const std::string& name() const { return name_; }
  std::string url() const { return server_.url(name_); }
  pg::Connection connect() const;
  cluster::LocalCluster& server() const { return server_; }

 private:
  cluster::LocalCluster& server_;
  std::string name_;
};

// A connection to the server's maintenance database.
pg::Connection admin(cluster::LocalCluster& server);

}  // namespace stagesync::testing
