#include "state/metadata.h"

#include <cstdio>
#include <ctime>
#include <random>

namespace stagesync::state {
namespace {

const char* kCreateV1 = R"SQL(
CREATE SCHEMA IF NOT EXISTS stagesync;
CREATE TABLE IF NOT EXISTS stagesync.meta (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  schema_version integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS stagesync.runs (
  run_id text PRIMARY KEY,
  command text NOT NULL,
  mode text,
  strategy text,
  status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  host text,
  os_user text,
  db_user text NOT NULL DEFAULT current_user,
  tables text[],
  error text,
  stagesync_version text
);
CREATE TABLE IF NOT EXISTS stagesync.table_runs (
  run_id text NOT NULL REFERENCES stagesync.runs ON DELETE CASCADE,
  table_name text NOT NULL,
  source_table text NOT NULL,
  mode_requested text,
  mode_used text,
  method_reason text,
  rows_read bigint NOT NULL DEFAULT 0,
  inserted bigint NOT NULL DEFAULT 0,
  updated bigint NOT NULL DEFAULT 0,
  deleted bigint NOT NULL DEFAULT 0,
  rejected bigint NOT NULL DEFAULT 0,
  orphans_kept bigint NOT NULL DEFAULT 0,
  duplicates_dropped bigint NOT NULL DEFAULT 0,
  collisions bigint NOT NULL DEFAULT 0,
  seconds double precision,
  PRIMARY KEY (run_id, table_name)
);
CREATE TABLE IF NOT EXISTS stagesync.rejects (
  run_id text NOT NULL REFERENCES stagesync.runs ON DELETE CASCADE,
  table_name text NOT NULL,
  row_key text,
  column_name text,
  reason text NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_run ON stagesync.rejects (run_id);
CREATE TABLE IF NOT EXISTS stagesync.table_state (
  table_name text PRIMARY KEY,
  source_table text NOT NULL,
  last_run_id text,
  last_success_at timestamptz,
  owned_rows bigint,
  watermark jsonb
);
)SQL";

// Version 2: backups (server-side copies of the owned rows of target tables).
const char* kUpgradeToV2 = R"SQL(
CREATE TABLE IF NOT EXISTS stagesync.backups (
  backup_id text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  reason text NOT NULL,
  run_id text
);
CREATE TABLE IF NOT EXISTS stagesync.backup_tables (
  backup_id text NOT NULL REFERENCES stagesync.backups ON DELETE CASCADE,
  ordinal integer NOT NULL,
  table_name text NOT NULL,
  target_table text NOT NULL,
  copy_table text NOT NULL,
  shape text NOT NULL,
  owned_predicate jsonb NOT NULL,
  rows bigint NOT NULL,
  PRIMARY KEY (backup_id, ordinal)
);
)SQL";

// Version 3: incremental runs. A table's in-scope source row count per run
// (rows_read counts only what an incremental run read); rejects looked up by
// run and table (an incremental run carries its table's earlier rejects).
const char* kUpgradeToV3 = R"SQL(
ALTER TABLE stagesync.table_runs ADD COLUMN IF NOT EXISTS source_rows bigint;
CREATE INDEX IF NOT EXISTS rejects_run_table ON stagesync.rejects (run_id, table_name);
)SQL";

// Version 4: rejects are written in bulk (an incremental run records again
// every row still set aside): no foreign key to stagesync.runs (its check ran
// once per row, more than half the cost of the insert; nothing deletes runs)
// and no index on run_id alone (rejects_run_table serves it).
const char* kUpgradeToV4 = R"SQL(
ALTER TABLE stagesync.rejects DROP CONSTRAINT IF EXISTS rejects_run_id_fkey;
DROP INDEX IF EXISTS stagesync.rejects_run;
)SQL";

// Version 5: `follow` (src/follow/, decision 0012). Per replication slot on
// the desktop: the end of the last desktop transaction the target holds,
// written in the same transaction as the batch that applied it.
const char* kUpgradeToV5 = R"SQL(
CREATE TABLE IF NOT EXISTS stagesync.follow_state (
  slot_name text PRIMARY KEY,
  scope_key text NOT NULL,
  source text NOT NULL,
  confirmed_lsn pg_lsn NOT NULL,
  last_run_id text,
  batches bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
)SQL";

// Version 6: every run asks, per table, whether a key its current rejects
// run set aside as a collision (column_name IS NULL) is free now
// (Session::collision_freed_sql): those rows are few, the table's other
// rejects (orphans) many; the partial index finds them without reading the rest.
const char* kUpgradeToV6 = R"SQL(
CREATE INDEX IF NOT EXISTS rejects_collisions ON stagesync.rejects (run_id, table_name) WHERE column_name IS NULL;
)SQL";

// Version 7 (decision 0016): the rows currently set aside, per target table,
// each written once, by the run that set it aside, and kept while it stays
// set aside (a run adds what it set aside and removes what it released);
// stagesync.rejects keeps, per run, the rows that run judged and set aside.
// Filled from each table's current rejects run (the last run that carried
// them); a table with rows in it already is left as it is (idempotent).
const char* kUpgradeToV7 = R"SQL(
CREATE TABLE IF NOT EXISTS stagesync.set_aside (
  table_name text NOT NULL,
  row_key text,
  column_name text,
  reason text NOT NULL,
  run_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS set_aside_key ON stagesync.set_aside (table_name, row_key);
CREATE INDEX IF NOT EXISTS set_aside_collisions ON stagesync.set_aside (table_name) WHERE column_name IS NULL;
INSERT INTO stagesync.set_aside (table_name, row_key, column_name, reason, run_id)
SELECT x.table_name, x.row_key, x.column_name, x.reason, x.run_id
FROM stagesync.table_state st JOIN stagesync.rejects x ON x.table_name = st.table_name
  AND x.run_id = coalesce(nullif(st.watermark ->> 'rejects_run', ''), st.last_run_id)
WHERE NOT EXISTS (SELECT 1 FROM stagesync.set_aside a WHERE a.table_name = st.table_name);
)SQL";

// Version 8: the stored image of each lookup (decision 0017). Per table and
// lookup (its position in the table's `lookups:`), what the lookup gave as of
// the table's last successful run: each match value (as text, cast back to
// its staging type when read) and a hash of (match values, taken value),
// computed by the source. `signature` names the lookup's configuration and
// the source's text settings the hashes depend on; `run_id` the run it is
// the image of (written in that run's transaction).
const char* kUpgradeToV8 = R"SQL(
CREATE TABLE IF NOT EXISTS stagesync.lookup_images (
  table_name text NOT NULL,
  lookup integer NOT NULL,
  signature text NOT NULL,
  run_id text NOT NULL,
  PRIMARY KEY (table_name, lookup)
);
CREATE TABLE IF NOT EXISTS stagesync.lookup_image_rows (
  table_name text NOT NULL,
  lookup integer NOT NULL,
  m text[] NOT NULL,
  h bigint NOT NULL
);
)SQL";

int current_version(pg::Connection& target) {
  pg::Result r = target.exec(
      "SELECT pg_catalog.to_regclass('stagesync.meta') IS NOT NULL, "
      "       pg_catalog.to_regnamespace('stagesync') IS NOT NULL");
  if (!r.boolean(0, 0)) {
    if (r.boolean(0, 1)) {
      pg::Result other = target.exec(
          "SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = 'stagesync'::regnamespace "
          "AND relkind = 'r' AND relname NOT LIKE 's\\_%' AND relname NOT LIKE 'r\\_%'");
      if (other.int64(0, 0) > 0) {
        throw MetadataError(
            "the target has a 'stagesync' schema with tables but no stagesync.meta table: it was not created by "
            "stagesync or has been damaged; rename or drop it before running stagesync");
      }
    }
    return 0;
  }
  return version_from(target.exec(version_sql()));
}

}  // namespace

std::string version_sql() { return "SELECT schema_version FROM stagesync.meta"; }

int version_from(const pg::Result& v) {
  if (v.rows() != 1) throw MetadataError("stagesync.meta on the target must hold exactly one row; it holds " + std::to_string(v.rows()));
  return static_cast<int>(v.int64(0, 0));
}

bool metadata_present(pg::Connection& target) {
  return current_version(target) == kMetadataVersion;
}

void ensure_metadata(pg::Connection& target) {
  int version = current_version(target);
  if (version > kMetadataVersion) {
    throw MetadataError("the target's stagesync metadata is version " + std::to_string(version) +
                        ", newer than this stagesync understands (" + std::to_string(kMetadataVersion) +
                        "); upgrade stagesync");
  }
  if (version == kMetadataVersion) return;
  // Creation and each upgrade step run in one transaction: a failure leaves the previous version.
  // One message (the simple protocol runs "a; b; c" in order, stopping at
  // the first error): one round trip.
  std::string steps = "BEGIN;\n";
  if (version < 1) {
    steps += std::string(kCreateV1) +
             "INSERT INTO stagesync.meta (schema_version) VALUES (1) ON CONFLICT (singleton) DO NOTHING;\n";
  }
  if (version < 2) steps += kUpgradeToV2;
  if (version < 3) steps += kUpgradeToV3;
  if (version < 4) steps += kUpgradeToV4;
  if (version < 5) steps += kUpgradeToV5;
  if (version < 6) steps += kUpgradeToV6;
  if (version < 7) steps += kUpgradeToV7;
  if (version < 8) steps += kUpgradeToV8;
  steps += "UPDATE stagesync.meta SET schema_version = " + std::to_string(kMetadataVersion) + ";\nCOMMIT";
  try {
    target.exec(steps);
  } catch (...) {
    if (target.is_alive()) target.exec("ROLLBACK");
    throw;
  }
}

std::string run_id_time(std::time_t t) {
  std::tm utc{};
  gmtime_r(&t, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
  return stamp;
}

std::string new_run_id() {
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%06x", static_cast<unsigned>(rd() & 0xFFFFFF));
  return run_id_time(std::time(nullptr)) + "_" + suffix;
}

}  // namespace stagesync::state
