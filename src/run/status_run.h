// `stagesync status`: what the target's metadata says — recent runs, recent
// backups (with the run that took each), each configured table's last success
// and lag, staging leftovers of interrupted runs, and whether a run is in
// progress. Reads only; needs only the target.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "backup/backup.h"
#include "config/config.h"

namespace stagesync::run {

// The status as one JSON document (also rendered for people by render_status()).
// Its shape is an interface, documented in docs/json.md: counts and seconds are
// numbers, timestamps ISO 8601 strings in UTC, null where unknown.
// `recent_runs`: how many runs, and how many backups, to list.
nlohmann::json read_status(const config::Config& cfg, int recent_runs = 10);
// One backup as in the status's `backups` list (and `backup --list --json`).
nlohmann::json backup_json(const backup::Backup& b);
std::string render_status(const nlohmann::json& status);

}  // namespace stagesync::run
