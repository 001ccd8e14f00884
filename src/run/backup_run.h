// `stagesync backup` and `stagesync restore`: target-only commands (the desktop
// may be down), holding the run lock so no sync interleaves.
#pragma once

#include <string>
#include <vector>

#include "backup/backup.h"
#include "config/config.h"

namespace stagesync::run {

// A connection to the target holding the run lock (LockBusy otherwise) with the metadata schema ready.
pg::Connection locked_target(const config::Config& cfg, double wait_seconds);

std::string run_backup(const config::Config& cfg, const std::vector<std::string>& tables, double wait_seconds);
void run_restore(const config::Config& cfg, const std::string& backup_id, double wait_seconds);

}  // namespace stagesync::run
