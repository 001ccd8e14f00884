#include "support/servers.h"

#include <gtest/gtest.h>

#include <atomic>

namespace stagesync::testing {
namespace {

std::unique_ptr<cluster::LocalCluster>& slot(int which) {
  static std::unique_ptr<cluster::LocalCluster> servers[3];
  return servers[which];
}

cluster::LocalCluster& get(int which) {
  auto& s = slot(which);
  if (!s) s = std::make_unique<cluster::LocalCluster>(which == 0 ? "stagesync-test-src" : "stagesync-test-tgt");
  return *s;
}

class ServersEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { Servers::shutdown(); }
};

const auto* registered = ::testing::AddGlobalTestEnvironment(new ServersEnvironment);

}  // namespace

cluster::LocalCluster& Servers::source() { return get(0); }
cluster::LocalCluster& Servers::target() { return get(1); }
cluster::LocalCluster& Servers::logical() {
  auto& s = slot(2);
  if (!s) {
    s = std::make_unique<cluster::LocalCluster>("stagesync-test-logical");
    // wal_level is read only at start: ALTER SYSTEM, then a restart.
    admin(*s).exec("ALTER SYSTEM SET wal_level = logical");
    s->restart();
  }
  return *s;
}
void Servers::shutdown() {
  for (int which : {0, 1, 2}) slot(which).reset();
}

pg::Connection admin(cluster::LocalCluster& server) {
  return pg::Connection(pg::Endpoint{server.conninfo("postgres"), "", "stagesync-test", 10});
}

TempDatabase::TempDatabase(cluster::LocalCluster& server, const std::string& prefix) : server_(server) {
  static std::atomic<int> counter{0};
  name_ = prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  admin(server_).exec("CREATE DATABASE " + pg::ident(name_));
}

TempDatabase::~TempDatabase() {
  try {
    admin(server_).exec("DROP DATABASE IF EXISTS " + pg::ident(name_) + " WITH (FORCE)");
  } catch (...) {
  }
}

pg::Connection TempDatabase::connect() const {
  return pg::Connection(pg::Endpoint{server_.conninfo(name_), "", "stagesync-test", 10});
}

}  // namespace stagesync::testing
