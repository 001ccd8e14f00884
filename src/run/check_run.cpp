#include "run/check_run.h"

#include "backup/backup.h"
#include "plan/sync_plan.h"
#include "reverse/reverse_run.h"
#include "run/run_errors.h"
#include "run/session.h"
#include "state/metadata.h"

namespace stagesync::run {

std::string strategy_risk(const config::Config& cfg, const std::string& strategy) {
  if (strategy == "swap") {
    return "strategy swap: stages every row, then deletes and re-inserts all owned rows in one transaction; "
           "atomic (a failure changes nothing), rewrites every owned row each run, regenerates identity values";
  }
  if (strategy == "truncate-first") {
    return std::string("strategy truncate-first: NOT atomic; clears owned rows, then loads in committed batches; a "
                       "failure midway leaves tables partial or empty until restored from the automatic backup. ") +
           (cfg.target.environment == "development" ? "Allowed here with --i-accept-data-loss (development target)."
                                                    : "Refused here: the target is not declared development.");
  }
  return "strategy merge: stages every row, then inserts, updates and deletes only differences in one transaction; "
         "atomic (a failure changes nothing); rows the sync does not own are never touched";
}

CheckReport run_check(const config::Config& cfg, const std::vector<std::string>& tables, const std::string& strategy) {
  CheckReport report;
  report.facts.push_back(strategy_risk(cfg, strategy));
  std::unique_ptr<source::Source> source;
  std::unique_ptr<pg::Connection> target;
  try {
    source = open_source(cfg);
    report.facts.push_back("source: connected to " + source->describe());
  } catch (const CheckFailed& e) {
    for (const auto& p : e.problems()) report.problems.push_back(p);
  } catch (const std::exception& e) {
    report.problems.push_back(e.what());
  }
  try {
    target = connect_side("target", target_endpoint(cfg));
    report.facts.push_back("target: connected to " + target->describe() + " (PostgreSQL " +
                           std::to_string(target->server_version() / 10000) + "), environment " +
                           cfg.target.environment);
    try {
      bool present = state::metadata_present(*target);
      report.facts.push_back(std::string("target: stagesync metadata ") +
                             (present ? "present" : "not created yet (the first run creates it)"));
      if (present) {
        auto backups = backup::list(*target);
        if (backups.empty()) {
          report.facts.push_back("backup: none taken yet (`stagesync backup --config ...` takes one)");
        } else {
          const auto& b = backups.front();
          report.facts.push_back("backup: last " + b.id + " at " + b.created_at + ", " +
                                 (b.restorable() ? "restorable" : "NOT restorable (a table changed shape since)"));
        }
      }
    } catch (const std::exception& e) {
      report.problems.push_back(std::string("target: ") + e.what());
    }
  } catch (const pg::Error& e) {
    report.problems.push_back(e.what());
  }
  if (!source || !target) return report;
  plan::Resolution r = plan::resolve(cfg, *source, *target, tables);
  for (auto& p : r.problems) report.problems.push_back(std::move(p));
  for (auto& n : r.notes) report.facts.push_back(std::move(n));
  report.warnings = std::move(r.warnings);
  if (r.problems.empty()) {
    for (size_t i : r.plan.selected()) {
      const auto& t = r.plan.tables[i];
      std::string f = "table " + t.name + " -> " + t.target_name + ": " + std::to_string(t.columns.size()) +
                      " column(s), key " + (t.keyed() ? "(" + pg::join(t.key, ", ") + ")" : std::string("none")) +
                      ", owner " + (t.owner ? t.owner->first + " = " + t.owner->second : std::string("none (owns every row)"));
      report.facts.push_back(f);
      // Not a problem: a run judges these itself and refuses violating rows before any write (exit 5).
      for (const auto& fk : t.foreign_keys) {
        if (fk.covered) continue;
        report.facts.push_back("table " + t.name + ": target foreign key " + fk.constraint + " (" +
                               pg::join(fk.columns, ", ") + ") -> " + fk.parent_display() +
                               " is not declared in 'references:'; a run refuses rows that would violate it (exit "
                               "5). To set them aside instead, " +
                               fk.suggested_reference(r.plan, t.name));
      }
    }
  }
  // Reverse entries, against both schemas (their problems join the forward ones: one pass).
  reverse::check_reverse(cfg, report.facts, report.problems);
  return report;
}

}  // namespace stagesync::run
