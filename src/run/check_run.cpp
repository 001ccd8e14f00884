#include "run/check_run.h"

#include "plan/sync_plan.h"
#include "run/session.h"
#include "state/metadata.h"

namespace stagesync::run {

CheckReport run_check(const config::Config& cfg, const std::vector<std::string>& tables) {
  CheckReport report;
  std::unique_ptr<pg::Connection> source, target;
  if (!cfg.source.sqlite.empty()) {
    report.problems.push_back("source: SQLite sources are not supported by this version yet");
  } else {
    try {
      source = connect_side("source", source_endpoint(cfg));
      report.facts.push_back("source: connected to " + source->describe() + " (PostgreSQL " +
                             std::to_string(source->server_version() / 10000) + ")");
    } catch (const pg::Error& e) {
      report.problems.push_back(e.what());
    }
  }
  try {
    target = connect_side("target", target_endpoint(cfg));
    report.facts.push_back("target: connected to " + target->describe() + " (PostgreSQL " +
                           std::to_string(target->server_version() / 10000) + "), environment " +
                           cfg.target.environment);
    try {
      report.facts.push_back(std::string("target: stagesync metadata ") +
                             (state::metadata_present(*target) ? "present" : "not created yet (the first run creates it)"));
    } catch (const std::exception& e) {
      report.problems.push_back(std::string("target: ") + e.what());
    }
  } catch (const pg::Error& e) {
    report.problems.push_back(e.what());
  }
  if (!source || !target) return report;
  plan::Resolution r = plan::resolve(cfg, *source, *target, tables);
  for (auto& p : r.problems) report.problems.push_back(std::move(p));
  if (r.problems.empty()) {
    for (size_t i : r.plan.selected()) {
      const auto& t = r.plan.tables[i];
      std::string f = "table " + t.name + " -> " + t.target_name + ": " + std::to_string(t.columns.size()) +
                      " column(s), key " + (t.keyed() ? "(" + pg::join(t.key, ", ") + ")" : std::string("none")) +
                      ", owner " + (t.owner ? t.owner->first + " = " + t.owner->second : std::string("none (owns every row)"));
      report.facts.push_back(f);
    }
  }
  return report;
}

}  // namespace stagesync::run
