// A SQLite desktop database as a source (source::Source): SPEC section 1.7.
//
// The file is opened read-only and read in one consistent state
// (sqlite::Snapshot: a read transaction in WAL mode, an online backup copy
// in rollback-journal mode), so the desktop application keeps writing.
// Values are converted one by one into the target columns' types
// (row_reader.h) and sent as COPY text. Incremental runs compare row
// fingerprints with those the last successful run recorded on this machine
// (fingerprint_cache.h): only new and changed keys' rows cross the network,
// with the vanished keys as deletions; a run with no change sends nothing.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "source/source.h"
#include "source/sqlite/fingerprint_cache.h"
#include "source/sqlite/row_reader.h"
#include "stage/copy_chain.h"
#include "sqlite/database.h"

namespace stagesync::source::sqlite_source {

class SqliteSource : public Source {
 public:
  // Opens `cfg.source.sqlite` read-only (sqlite::Error names the file) and the
  // fingerprint cache at `cache_path`.
  SqliteSource(const config::Config& cfg, const std::string& cache_path);

  std::string describe() const override;
  catalog::Tables read_tables(const std::vector<std::string>& names) override;
  bool converts_values() const override { return true; }
  void stage(StageRun& run) override;
  void committed(const std::string& run_id) noexcept override;

 private:
  // Table `i` read whole into its staging table by `chain`'s copy, its
  // fingerprints recorded afresh.
  void read_whole(StageRun& run, size_t i, stage::CopyChain& chain, sqlite::Database& db);

  // A reference of a child read by fingerprints whose parent changed in this
  // run: the children of the parent rows this run sends or deletes are read
  // again (an orphan may pass now, a child may have lost its parent).
  struct Reference {
    size_t parent = 0;
    std::vector<int> child_columns;   // positions in the child's staged columns
    std::vector<int> parent_columns;  // positions in the parent's staged columns
  };
  // Registers table `i`'s references to parents that changed (ids into
  // references_, in `as_child`); returns why the table must be read whole instead, or "".
  std::string follow_parents(StageRun& run, size_t i, std::vector<int>& as_child);
  // Records the referenced values of a row table `table` sends, for its children.
  void note_parent_values(size_t table, const RowReader& row);

  const config::Config& cfg_;
  std::unique_ptr<sqlite::Database> db_;
  std::string identity_;  // "sqlite:<absolute path>"
  FingerprintCache cache_;
  std::string pending_run_;  // the run whose fingerprints the cache holds uncommitted
  std::vector<std::string> pending_tables_;
  std::vector<Reference> references_;  // this run's
  std::vector<bool> read_whole_;       // per plan table: read whole in this run
};

// Where the fingerprint cache of the configuration at `config_path` lives
// by default: next to it, "<config without .yaml>.fingerprints".
std::string default_cache_path(const std::string& config_path);

}  // namespace stagesync::source::sqlite_source
