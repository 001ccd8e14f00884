// Backups: server-side copies of the rows the sync owns in chosen target
// tables, in the target's `stagesync` schema (tables b_<id>_<n>), taken in one
// snapshot. Restore puts exactly those rows back in one transaction: the owned
// in-scope rows are deleted and the copies inserted with their original
// values, identity columns included; rows the sync does not own are never
// touched. Restore refuses a table whose columns changed since the backup.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.h"
#include "pg/connection.h"

namespace stagesync::backup {

class BackupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TableCopy {
  std::string table;       // target table name as configured
  std::string copy_table;  // stagesync.b_<id>_<n>
  int64_t rows = 0;
  bool shape_unchanged = true;  // columns and types still as at backup time
};

struct Backup {
  std::string id;
  std::string created_at;  // ISO 8601, UTC: 2026-12-06T13:46:51Z
  std::string reason;
  std::string run_id;      // the run that took it (truncate-first's automatic backup); empty: `stagesync backup`
  std::vector<TableCopy> tables;
  bool restorable() const;
};

// Target tables of the configuration (all, or those named by source or target
// name), parents before children by the configured references.
std::vector<const config::Table*> tables_in_order(const config::Config& cfg, const std::vector<std::string>& only);

// Takes a backup; returns its id. Runs in its own transaction. `run_id`: the
// run taking it, if any (recorded, shown by `status`).
std::string create(pg::Connection& target, const config::Config& cfg, const std::vector<const config::Table*>& tables,
                   const std::string& reason, const std::string& run_id = {});
// Newest first; at most `limit` backups (all when negative).
std::vector<Backup> list(pg::Connection& target, int limit = -1);
// Restores in one transaction; throws BackupError (unknown id, changed shape).
void restore(pg::Connection& target, const std::string& id);
// Drops all but the newest `keep` backups; returns how many were dropped.
int prune(pg::Connection& target, int keep);

}  // namespace stagesync::backup
