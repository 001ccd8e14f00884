// A follower's target session and resolved plan, kept from one batch's run to
// the next (docs/decisions/0014-a-followers-kept-session.md): a batch after the
// first opens no target connection, takes no run lock (the kept session holds
// it), and reads no catalog of the target, but checks in its first round trip
// that what the plan was resolved from is unchanged.
//
// A run that fails leaves nothing kept (its session is closed with it, and the
// run lock with it): the next run connects, locks and resolves anew.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "catalog/table_schema.h"
#include "pg/connection.h"
#include "plan/sync_plan.h"

namespace stagesync::run {

struct KeptTarget {
  std::unique_ptr<pg::Connection> connection;  // holds the run lock while kept
  std::optional<plan::SyncPlan> plan;
  catalog::Tables source_tables;  // what the plan was resolved from (plan::Resolution)
  std::string target_catalog;

  bool usable() const { return connection && connection->is_alive() && plan; }
  void forget() {
    connection.reset();
    plan.reset();
    source_tables.clear();
    target_catalog.clear();
  }
};

// A kept plan's target tables changed since it was resolved (a DDL between two
// batches): the run stopped before it staged or wrote anything; its run
// record says so. Not an error of the follower: it resolves anew and retries.
class PlanChanged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace stagesync::run
