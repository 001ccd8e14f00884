// Typed outcomes that end a command early. Each maps to one exit code (cli/exit_codes.h).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "report/run_summary.h"

namespace stagesync::run {

// Configuration does not match the databases (`check` problems).
class CheckFailed : public std::runtime_error {
 public:
  explicit CheckFailed(std::vector<std::string> problems)
      : std::runtime_error(std::to_string(problems.size()) + " problem(s) found; nothing was changed"),
        problems_(std::move(problems)) {}
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Another stagesync run holds the target's run lock.
class LockBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The request is refused as unsafe or unsupported (e.g. truncate-first on production).
class Refused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The connection was lost during COMMIT and could not be re-established to
// learn whether the run committed.
class InDoubt : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A mass-change guard tripped: the run would delete too much; nothing was changed.
class MassChangeRefused : public std::runtime_error {
 public:
  MassChangeRefused(std::vector<std::string> tables, std::vector<report::TableResult> results)
      : std::runtime_error("mass-change guard: the run would remove too much; nothing was changed. Check the source "
                           "(a reinstalled or restored desktop database, or the wrong connection string, looks "
                           "like this). If the deletions are real, run again with --allow-mass-delete[=TABLES]"),
        tables_(std::move(tables)),
        results_(std::move(results)) {}
  // One line per tripped table: "table T: why".
  const std::vector<std::string>& tables() const { return tables_; }
  // Per-table facts (owned rows, planned deletions, guard verdicts) for the summary.
  const std::vector<report::TableResult>& results() const { return results_; }

 private:
  std::vector<std::string> tables_;
  std::vector<report::TableResult> results_;
};

}  // namespace stagesync::run
