// Exit status of the stagesync command: an interface scripts depend on
// (documented in docs/exit-codes.md). Never renumber.
#pragma once

namespace stagesync::cli {

enum ExitCode : int {
  kOk = 0,              // the whole command succeeded
  kInternal = 1,        // unexpected error (a bug): please report it
  kUsage = 2,           // bad command line or configuration file; or a refused/unsupported request
  kCheckFailed = 3,     // configuration does not match the databases (check problems); nothing changed
  kDatabase = 4,        // cannot connect, or a database error stopped the run; target unchanged
  kDataRefused = 5,     // source data cannot be applied as configured (duplicates, orphans with fail, bad values); nothing changed
  kDifferences = 6,     // verify found differences between source and target
  kLocked = 7,          // another stagesync run holds the target's run lock
  kMetadata = 8,        // the target's stagesync metadata schema is unusable
  kMassChange = 9,      // a mass-change guard tripped (the run would delete too much); nothing changed
  kInDoubt = 10,        // the connection was lost during COMMIT and could not be re-established: unchanged or fully synced, unknown which
  kBehind = 20,         // status --max-lag: a configured table is further behind than the limit (or never synced)
  kFailing = 21,        // status --max-lag: the last attempts of a direction failed (or the target is unreachable)
  kInterrupted = 130,   // stopped by SIGINT/SIGTERM; target unchanged
};

}  // namespace stagesync::cli
