// In-doubt reverse runs: a run records its bookkeeping as *pending* in the
// target (naming its desktop transaction id) before it commits on the
// desktop, and promotes it after. A run that died in between left a pending
// record; the next run resolves it before anything else, by asking the desktop
// what became of that transaction (txid_status): committed -> promote,
// aborted -> discard, in progress -> the old server session is ended (only a
// stagesync reverse session of that pid) and asked again. Decision 0008.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "report/reporter.h"

namespace stagesync::reverse {

struct Pending {
  std::string run_id;
  int64_t desktop_xid = 0;
  int desktop_pid = 0;
  std::string desktop_identity;
};

inline constexpr const char* kDesktopApplicationName = "stagesync (reverse)";

// The statement listing pending runs, oldest first, and its reader.
std::string pending_sql();
std::vector<Pending> pending_from(const pg::Result& r);

// What became of the desktop transaction: "committed" or "aborted". Ends a
// still-running old session first. Throws run::InDoubt when the desktop cannot
// tell (the transaction is too old for its commit log, another database, or
// the old session does not end).
std::string desktop_outcome(pg::Connection& desktop, const Pending& p, const std::string& desktop_identity);

// Promotes or discards every pending run (each in one target transaction).
// Returns how many runs were promoted.
int resolve_pending(pg::Connection& target, pg::Connection& desktop, const std::vector<Pending>& pending,
                    const std::string& desktop_identity, report::Reporter& out);

// Adds pending run $1's promotion (or discard) statements, with BEGIN and COMMIT, to a pipeline's worth of SQL.
void add_promotion(pg::Pipeline& p, const std::string& run_id, bool committed);

}  // namespace stagesync::reverse
