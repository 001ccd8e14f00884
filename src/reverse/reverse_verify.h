// `stagesync verify`'s reverse part: per reverse entry, whether every selected
// mobile row is on the desktop as reverse sync last copied it. Two counts, each
// an expected outcome (not an error): mobile rows not (or not as they are now)
// copied (new since the last run, collisions), and rows reverse wrote that are
// no longer on the desktop as it wrote them (edited or deleted there). Nothing
// is written on either side (the desktop's temporary table is rolled back).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "report/reporter.h"
#include "report/run_summary.h"

namespace stagesync::reverse {

// verified TableResults (target = cloud table, source = desktop table); `matches` false on a difference,
// which is also reported as a warning naming the counts. `tables`: --tables (cloud or desktop names,
// others ignored); empty: every entry.
std::vector<report::TableResult> verify_reverse(const config::Config& cfg, const std::vector<std::string>& tables,
                                                report::Reporter& out);

}  // namespace stagesync::reverse
