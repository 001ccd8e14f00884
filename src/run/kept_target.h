// A follower's target session and resolved plan, kept from one batch's run to
// the next (docs/decisions/0014-a-followers-kept-session.md): a batch after the
// first opens no target connection, takes no run lock (the kept session holds
// it), and reads no catalog of the target, but checks in its first round trip
// that what the plan was resolved from is unchanged.
//
// A session closed while the follower waited (a NAT or proxy dropping an idle
// connection, a target restart) is found before the next batch uses it and
// replaced at once (forget_if_closed()).
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
  // Before a batch uses it: when the kept session was closed while the
  // follower waited (pg::Connection::closed_while_idle(): no round trip), it
  // is forgotten and the reason returned; the batch then connects, locks and
  // resolves as a first one does. Not a failure: nothing of the batch had begun.
  std::optional<std::string> forget_if_closed() {
    if (!connection) return std::nullopt;
    std::optional<std::string> why = connection->closed_while_idle();
    if (why) forget();
    return why;
  }
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
