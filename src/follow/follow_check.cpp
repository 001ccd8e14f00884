#include "follow/follow_check.h"

#include "follow/follow_plan.h"
#include "follow/follow_run.h"
#include "logical/readiness.h"
#include "logical/replica_identity.h"
#include "logical/test_decoding.h"
#include "run/session.h"

namespace stagesync::follow {

void check_follow(const config::Config& cfg, run::CheckReport& report) {
  if (!cfg.source.sqlite.empty()) {
    report.warnings.push_back(
        "follow: the desktop is a SQLite file, which has no logical decoding; follow is not available (schedule "
        "`stagesync run --every 1m` instead)");
    return;
  }
  std::unique_ptr<pg::Connection> desktop;
  std::string slot;
  try {
    desktop = run::connect_side("source", run::source_endpoint(cfg), false);
    auto target = run::connect_side("target", run::target_endpoint(cfg), false);
    slot = slot_name(*target, cfg);
  } catch (const std::exception& e) {
    report.warnings.push_back(std::string("follow: readiness not judged: ") + e.what());
    if (!desktop) return;
  }
  logical::ReadinessOptions o;
  o.slot_name = slot;
  o.plugin = logical::kPlugin;
  o.endpoint = run::source_endpoint(cfg);
  std::vector<logical::ReadinessProblem> problems = logical::check_readiness(*desktop, o);
  for (const auto& p : problems) {
    report.problems.push_back("follow: " + p.message + "; fix: " + p.fix);
  }
  if (problems.empty()) {
    report.facts.push_back(
        "follow: the desktop is ready for logical capture (wal_level = logical, test_decoding, "
        "a free replication slot" +
        std::string(slot.empty() ? "" : ": " + slot) + ")");
  }
  for (const auto& id : logical::read_identities(*desktop, followed_relations(cfg))) {
    std::string line = "follow: " + id.describe();
    if (!id.opt_in_ddl().empty()) {
      line += cfg.follow.replica_identity == "full"
                  ? " (follow: { replica_identity: full } is set: `stagesync follow --apply-replica-identity` runs " +
                        id.opt_in_ddl() + ")"
                  : " (without it, follow reconciles this table's keys in a batch that deletes or updates its rows)";
    }
    report.facts.push_back(line);
  }
}

}  // namespace stagesync::follow
