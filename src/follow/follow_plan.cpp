#include "follow/follow_plan.h"

#include "logical/replica_identity.h"
#include "run/session.h"

namespace stagesync::follow {
namespace {

// Decision 0011's measurement, in one line.
constexpr const char* kWalCost =
    "WAL cost of REPLICA IDENTITY FULL (decision 0011, measured): each UPDATE and DELETE of those tables also logs "
    "the old row: +47% WAL for a one-column UPDATE, 2.9x for a DELETE; INSERTs cost the same; no table rewrite, a "
    "brief lock under a 2 s lock_timeout";

std::string replica_identity_name(char replident) {
  switch (replident) {
    case 'f':
      return "full";
    case 'i':
      return "index";
    case 'n':
      return "nothing";
    default:
      return "default";
  }
}

std::string old_row_name(logical::OldRow o) {
  switch (o) {
    case logical::OldRow::primary_key:
      return "primary_key";
    case logical::OldRow::index:
      return "index";
    case logical::OldRow::full_row:
      return "full_row";
    case logical::OldRow::none:
      break;
  }
  return "none";
}

// What a batch does with the table's deletes and key-changing updates.
std::string batch_meaning(const logical::TableIdentity& id) {
  if (id.old_row == logical::OldRow::none) {
    return "deletes and key-changing updates carry no old key: a batch holding one reconciles the table whole (key "
           "digests of both sides)";
  }
  return "deletes and key-changing updates carry the old key: a batch lists the keys it changed";
}

}  // namespace

std::vector<logical::Relation> followed_relations(const config::Config& cfg) {
  std::vector<logical::Relation> tables;
  for (const auto& t : cfg.tables) {
    size_t dot = t.name.find('.');
    tables.push_back(dot == std::string::npos ? logical::Relation{"public", t.name}
                                              : logical::Relation{t.name.substr(0, dot), t.name.substr(dot + 1)});
  }
  return tables;
}

FollowPlan plan_follow(const config::Config& cfg) {
  FollowPlan plan;
  bool opt_in = cfg.follow.replica_identity == "full";
  plan.json = {{"replica_identity", cfg.follow.replica_identity},
               {"tables", nlohmann::json::array()},
               {"would_alter", nlohmann::json::array()},
               {"wal_cost", nullptr},
               {"error", nullptr}};
  if (!cfg.source.sqlite.empty()) {
    std::string why = "the desktop is a SQLite file, which has no logical decoding: follow is not available";
    plan.json["error"] = why;
    plan.lines.push_back("follow: " + why);
    return plan;
  }
  auto desktop = run::connect_side("source", run::source_endpoint(cfg), false);
  std::vector<logical::TableIdentity> identities = logical::read_identities(*desktop, followed_relations(cfg));
  std::vector<std::string> statements;
  for (const auto& id : identities) {
    std::string ddl = opt_in ? id.opt_in_ddl() : "";
    std::string name = id.relation.schema + "." + id.relation.name;
    std::string keys;
    for (const auto& k : id.key_columns) keys += (keys.empty() ? "" : ", ") + k;
    if (id.old_row == logical::OldRow::primary_key) keys = "primary key: " + keys;
    if (id.old_row == logical::OldRow::index) keys = "index: " + keys;
    if (id.old_row == logical::OldRow::none && id.replident == 'd') keys = "no primary key";
    plan.json["tables"].push_back({{"table", name},
                                   {"replica_identity", replica_identity_name(id.replident)},
                                   {"old_key", old_row_name(id.old_row)},
                                   {"key_columns", id.key_columns},
                                   {"batches", id.old_row == logical::OldRow::none ? "reconciled_whole" : "key_listed"},
                                   {"would_alter", ddl.empty() ? nlohmann::json() : nlohmann::json(ddl)}});
    std::string line = "follow: " + name + ": replica identity " + replica_identity_name(id.replident) +
                       (keys.empty() ? "" : " (" + keys + ")") + "; " + batch_meaning(id);
    if (!ddl.empty()) {
      line += "; `stagesync follow --apply-replica-identity` would run " + ddl;
      statements.push_back(ddl);
    } else if (!id.opt_in_ddl().empty()) {
      line += "; the opt-in `follow: { replica_identity: full }` (not set) would run " + id.opt_in_ddl();
    }
    plan.lines.push_back(line);
  }
  plan.json["would_alter"] = statements;
  if (!statements.empty()) {
    plan.json["wal_cost"] = kWalCost;
    plan.lines.push_back("follow: replica_identity: full is set: `stagesync follow --apply-replica-identity` would " +
                         std::string("ALTER ") + std::to_string(statements.size()) +
                         " desktop table(s) as listed above (this plan changed nothing); " + kWalCost);
  } else if (opt_in) {
    plan.lines.push_back(
        "follow: replica_identity: full is set, and every followed table's deletes already carry an old key: "
        "`stagesync follow --apply-replica-identity` would change nothing");
  } else {
    plan.lines.push_back("follow: replica_identity: default: follow changes nothing on the desktop's tables");
  }
  return plan;
}

}  // namespace stagesync::follow
