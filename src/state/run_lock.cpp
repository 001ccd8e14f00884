#include "state/run_lock.h"

#include <chrono>
#include <thread>

namespace stagesync::state {
namespace {
std::string lock_text(const std::string& scope_key) { return "stagesync run " + scope_key; }
}  // namespace

bool RunLock::acquire(pg::Connection& target, const std::string& scope_key, double wait_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_seconds);
  while (true) {
    pg::Result r = target.exec("SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtextextended($1, 0))",
                               std::vector<pg::Param>{lock_text(scope_key)});
    if (r.boolean(0, 0)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

void RunLock::try_once(pg::Pipeline& p, const std::string& scope_key, std::optional<bool>& taken,
                       const Condition& only_if) {
  std::vector<pg::Param> params{lock_text(scope_key)};
  std::string condition = only_if ? only_if(params) : "true";
  p.add(
      "SELECT CASE WHEN " + condition + " THEN pg_catalog.pg_try_advisory_lock(pg_catalog.hashtextextended($1, 0)) END",
      params, [&taken](pg::Result& r) {
        if (!r.is_null(0, 0)) taken = r.boolean(0, 0);
      });
}

int RunLock::holder(pg::Connection& target, const std::string& scope_key) {
  pg::Result r = target.exec(
      "SELECT l.pid FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
      "AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) "
      "AND ((l.classid::bigint << 32) | l.objid::bigint) = "
      "    (pg_catalog.hashtextextended($1, 0) & x'FFFFFFFFFFFFFFFF'::bigint) LIMIT 1",
      std::vector<pg::Param>{lock_text(scope_key)});
  return r.rows() ? static_cast<int>(r.int64(0, 0)) : 0;
}

}  // namespace stagesync::state
