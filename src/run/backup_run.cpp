#include "run/backup_run.h"

#include "run/run_errors.h"
#include "run/session.h"
#include "state/metadata.h"
#include "state/run_lock.h"

namespace stagesync::run {

pg::Connection locked_target(const config::Config& cfg, double wait_seconds) {
  std::unique_ptr<pg::Connection> target = connect_side("target", target_endpoint(cfg));
  if (!state::RunLock::acquire(*target, scope_key(cfg), wait_seconds)) {
    throw LockBusy("another stagesync run is in progress on " + target->describe() +
                   "; try again later or pass --wait SECONDS");
  }
  state::ensure_metadata(*target);
  return std::move(*target);
}

std::string run_backup(const config::Config& cfg, const std::vector<std::string>& tables, double wait_seconds) {
  pg::Connection target = locked_target(cfg, wait_seconds);
  auto ordered = backup::tables_in_order(cfg, tables);
  if (ordered.empty()) throw CheckFailed({"--tables names no configured table"});
  return backup::create(target, cfg, ordered, "stagesync backup");
}

void run_restore(const config::Config& cfg, const std::string& backup_id, double wait_seconds) {
  pg::Connection target = locked_target(cfg, wait_seconds);
  try {
    backup::restore(target, backup_id);
  } catch (const backup::BackupError& e) {
    throw Refused(e.what());
  }
}

}  // namespace stagesync::run
