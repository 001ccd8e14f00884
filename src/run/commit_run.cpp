#include "run/commit_run.h"

#include <chrono>
#include <thread>

#include "pg/interrupt.h"
#include "run/run_errors.h"

namespace stagesync::run {
namespace {

constexpr double kFenceSeconds = 60;

// Ends the server session `pid` (ours, from before the connection dropped) and
// waits until it is gone. Returns false if it is still there after the limit.
// A session that already ended is not an error. Only a session of this
// database with stagesync's application name is signalled, so a recycled pid
// belonging to anyone else is left alone.
bool fence(pg::Connection& target, int pid, const std::string& application_name) {
  std::vector<pg::Param> p{std::to_string(pid), application_name};
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(kFenceSeconds);
  while (true) {
    pg::Result r = target.exec(
        "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
        "WHERE pid = $1::int AND application_name = $2 AND datname = pg_catalog.current_database()",
        p);
    if (r.rows() == 0) return true;
    if (std::chrono::steady_clock::now() >= until || pg::interrupted()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

void commit_run(Session& s, pg::Pipeline& batch, const std::string& run_id, const std::string& last_table,
                report::Reporter& out, bool last) {
  pg::throw_if_interrupted();
  int old_pid = s.target().backend_pid();
  try {
    batch.add("COMMIT");
    if (last) s.drop_staging_after(batch);
    batch.run();
    if (last) {
      s.staging_dropped();
      s.committed();
    }
    return;
  } catch (const pg::Error& e) {
    if (!e.is_connection_loss()) throw;
    out.warning("the connection was lost during COMMIT (" + std::string(e.what()) +
                "); reconnecting to find out whether the run committed");
    std::string in_doubt = "the connection to the target was lost during COMMIT of run " + run_id + " and ";
    std::string advice = "; the target is either unchanged or fully synced: run `stagesync verify` or sync again";
    bool committed = false;
    for (int attempt = 0;; ++attempt) {
      try {
        s.reconnect_target();
        if (!fence(s.target(), old_pid, s.application_name())) {
          throw InDoubt(in_doubt + "its server session " + std::to_string(old_pid) + " did not end within " +
                        std::to_string(static_cast<int>(kFenceSeconds)) + " s" + advice);
        }
        committed =
            s.target()
                .exec("SELECT EXISTS (SELECT 1 FROM stagesync.table_runs WHERE run_id = $1 AND table_name = $2)",
                      std::vector<pg::Param>{run_id, last_table})
                .boolean(0, 0);
        break;
      } catch (const pg::Error& again) {
        if (!again.is_connection_loss() || attempt >= 20 || pg::interrupted()) {
          throw InDoubt(in_doubt + "could not be re-established to check whether it committed" + advice);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    if (committed) {
      out.warning("run " + run_id + " did commit before the connection was lost");
      if (last) s.committed();
      return;
    }
    out.warning("run " + run_id + " did not commit; nothing was changed");
    throw;
  }
}

}  // namespace stagesync::run
