// The `stagesync` schema in the target: run records, per-table results,
// rejects and per-table state. Created on first use; versioned.
//
// ensure_metadata() is idempotent. A schema written by a newer stagesync, or
// one whose tables are missing or damaged, is an error (MetadataError), never
// silently recreated: the run records are the audit trail of what was synced.
#pragma once

#include <ctime>
#include <stdexcept>
#include <string>

#include "pg/connection.h"

namespace stagesync::state {

inline constexpr const char* kSchema = "stagesync";
inline constexpr int kMetadataVersion = 8;

class MetadataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Creates or upgrades the metadata schema. Call while holding the RunLock.
void ensure_metadata(pg::Connection& target);

// A new run's id, "YYYYMMDDTHHMMSS_xxxxxx" (UTC, then 6 random hex digits):
// sorts by start time. The key of stagesync.runs for every command.
std::string new_run_id();
// The UTC time a run id begins with (YYYYMMDDTHHMMSS), for a run started at
// `t`: run ids sort by their start time.
std::string run_id_time(std::time_t t);

// The statement reading the schema version, for a caller that batches it with
// others (pg::Pipeline) on the common path where the schema exists: it fails
// with SQLSTATE 42P01 when it does not (then ensure_metadata() decides).
std::string version_sql();
// The version in that statement's result (MetadataError when damaged).
int version_from(const pg::Result& r);

// True when the schema exists at the current version (read-only probe).
bool metadata_present(pg::Connection& target);

}  // namespace stagesync::state
