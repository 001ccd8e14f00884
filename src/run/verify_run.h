// `stagesync verify`: for each selected table, an order-independent checksum
// and count of the rows the sync owns in the target, against the same of the
// source rows after mapping (staged and prepared exactly as a sync would, then
// rolled back). Rows a sync sets aside (rejects, collisions) are not expected
// in the target. Writes nothing to synced tables.
#pragma once

#include "config/config.h"
#include "report/reporter.h"
#include "run/session.h"

namespace stagesync::run {

// outcome "succeeded" (exit 0) when every table matches, else "differences".
report::RunSummary run_verify(const config::Config& cfg, const SessionOptions& options, report::Reporter& out);

}  // namespace stagesync::run
