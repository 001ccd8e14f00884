#include "reverse/pending.h"

#include <chrono>
#include <thread>

#include "pg/interrupt.h"
#include "pg/pipeline.h"
#include "run/run_errors.h"
#include "state/reverse_book.h"

namespace stagesync::reverse {

std::string pending_sql() {
  return "SELECT run_id, desktop_xid, desktop_pid, desktop_identity FROM stagesync.reverse_pending ORDER BY created_at";
}

std::vector<Pending> pending_from(const pg::Result& r) {
  std::vector<Pending> out;
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(Pending{r.text(i, 0), r.int64(i, 1), static_cast<int>(r.int64(i, 2)), r.text(i, 3)});
  }
  return out;
}

std::string desktop_outcome(pg::Connection& desktop, const Pending& p, const std::string& desktop_identity) {
  std::string about = "reverse run " + p.run_id + " (desktop transaction " + std::to_string(p.desktop_xid) + ")";
  if (p.desktop_identity != desktop_identity) {
    throw run::InDoubt(about + " was left pending on another desktop database (" + p.desktop_identity + ", now " +
                       desktop_identity + "); connect to that database once so it can be resolved");
  }
  std::vector<pg::Param> params{std::to_string(p.desktop_xid), std::to_string(p.desktop_pid),
                                std::string(kDesktopApplicationName)};
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (true) {
    // Still in progress: its client died, its server session has not noticed yet. End that session
    // (only if it is ours: same pid and stagesync's reverse application name), which aborts it.
    pg::Result r = desktop.exec(
        "SELECT pg_catalog.txid_status($1::bigint), "
        "(SELECT pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a WHERE a.pid = $2::int "
        " AND a.application_name = $3 AND pg_catalog.txid_status($1::bigint) = 'in progress')",
        params);
    if (r.is_null(0, 0)) {
      throw run::InDoubt(about +
                         ": the desktop no longer knows whether it committed (too old); check the desktop "
                         "rows by hand, then delete the row of stagesync.reverse_pending in the target");
    }
    std::string status = r.text(0, 0);
    if (status == "committed" || status == "aborted") return status;
    if (std::chrono::steady_clock::now() >= until || pg::interrupted()) {
      throw run::InDoubt(about + " is still in progress on the desktop after 60 s; run reverse again later");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void add_promotion(pg::Pipeline& p, const std::string& run_id, bool committed) {
  int n = 0;
  const char* const* sql = committed ? state::reverse_promote_sql(n) : state::reverse_discard_sql(n);
  p.add("BEGIN");
  for (int i = 0; i < n; ++i) p.add(sql[i], std::vector<pg::Param>{run_id});
  p.add("COMMIT");
}

int resolve_pending(pg::Connection& target, pg::Connection& desktop, const std::vector<Pending>& pending,
                    const std::string& desktop_identity, report::Reporter& out) {
  int promoted = 0;
  for (const auto& p : pending) {
    bool committed = desktop_outcome(desktop, p, desktop_identity) == "committed";
    pg::Pipeline batch(target);
    add_promotion(batch, p.run_id, committed);
    batch.run();
    if (committed) {
      ++promoted;
      out.warning("reverse run " + p.run_id +
                  " had committed on the desktop before it was interrupted; its "
                  "bookkeeping is now complete (nothing is copied twice)");
    } else {
      out.warning("reverse run " + p.run_id +
                  " had not committed on the desktop; it changed nothing there and is "
                  "discarded");
    }
  }
  return promoted;
}

}  // namespace stagesync::reverse
