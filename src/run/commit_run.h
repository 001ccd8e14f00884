// COMMIT of a run's apply transaction, with the in-doubt case resolved.
#pragma once

#include <string>

#include "pg/pipeline.h"
#include "report/reporter.h"
#include "run/session.h"

namespace stagesync::run {

// Commits the open transaction on the session's target connection.
//
// When the connection drops during COMMIT the client cannot know whether the
// server committed. This then reconnects, *fences* the old server session
// (terminates it and waits until it is gone, so a COMMIT still in flight can
// no longer land after the check), and looks for the transaction's own
// record, the table_runs row of `last_table`: present means committed (returns
// normally), absent means rolled back (rethrows the connection error, so the
// caller retries). Throws InDoubt when the target cannot be reached again or
// the old session does not end; never re-applies a committed run and never
// reports a lost one as done.
// `batch` holds the transaction's last statements (its records): COMMIT is
// added to it, so they and the COMMIT cost one round trip.
// With `last`, the run's staging tables are dropped in the same batch, after the COMMIT.
void commit_run(Session& s, pg::Pipeline& batch, const std::string& run_id, const std::string& last_table,
                report::Reporter& out, bool last = true);

}  // namespace stagesync::run
