// `stagesync check`: configuration, both connections and schema
// compatibility, every problem in one pass, without writing anything.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace stagesync::run {

struct CheckReport {
  std::vector<std::string> facts;     // what was found fine
  std::vector<std::string> warnings;  // what could not be judged; a sync still runs
  std::vector<std::string> problems;  // empty: ready to sync
};

// Pre-flight: also states the target environment, the last backup and
// whether it is restorable, and what `strategy` risks.
CheckReport run_check(const config::Config& cfg, const std::vector<std::string>& tables,
                      const std::string& strategy = "merge");

}  // namespace stagesync::run
