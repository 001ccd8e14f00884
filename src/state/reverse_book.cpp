#include "state/reverse_book.h"

namespace stagesync::state {

std::string reverse_book_ddl() {
  return R"SQL(CREATE SCHEMA IF NOT EXISTS stagesync;
CREATE TABLE IF NOT EXISTS stagesync.reverse_rows (
  entry text NOT NULL,
  key text[] NOT NULL,
  mobile_hash text NOT NULL,
  desktop_hash text,
  PRIMARY KEY (entry, key)
);
CREATE TABLE IF NOT EXISTS stagesync.reverse_state (
  entry text PRIMARY KEY,
  target_table text NOT NULL,
  desktop_table text NOT NULL,
  watermark jsonb,
  last_run_id text,
  last_success_at timestamptz,
  copied_rows bigint
);
CREATE TABLE IF NOT EXISTS stagesync.reverse_pending (
  run_id text PRIMARY KEY,
  desktop_xid bigint NOT NULL,
  desktop_pid integer NOT NULL,
  desktop_identity text NOT NULL,
  watermarks jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS stagesync.reverse_pending_rows (
  run_id text NOT NULL,
  entry text NOT NULL,
  key text[] NOT NULL,
  mobile_hash text NOT NULL,
  desktop_hash text,
  op char(1) NOT NULL
);
CREATE INDEX IF NOT EXISTS reverse_pending_rows_run ON stagesync.reverse_pending_rows (run_id))SQL";
}

namespace {

// op: 'u' record (mobile image, desktop row as written; desktop_hash NULL: a collision to retry),
//     'd' forget the key, 'k' deleted on the mobile side and kept on the desktop (mobile_hash '').
const char* const kPromote[] = {
    "DELETE FROM stagesync.reverse_rows b USING stagesync.reverse_pending_rows p "
    "WHERE p.run_id = $1 AND p.op = 'd' AND b.entry = p.entry AND b.key = p.key",
    "INSERT INTO stagesync.reverse_rows (entry, key, mobile_hash, desktop_hash) "
    "SELECT entry, key, mobile_hash, desktop_hash FROM stagesync.reverse_pending_rows "
    "WHERE run_id = $1 AND op = 'u' "
    "ON CONFLICT (entry, key) DO UPDATE SET mobile_hash = EXCLUDED.mobile_hash, desktop_hash = EXCLUDED.desktop_hash",
    "UPDATE stagesync.reverse_rows b SET mobile_hash = '' FROM stagesync.reverse_pending_rows p "
    "WHERE p.run_id = $1 AND p.op = 'k' AND b.entry = p.entry AND b.key = p.key",
    "INSERT INTO stagesync.reverse_state AS s (entry, target_table, desktop_table, watermark, last_run_id, "
    "last_success_at, copied_rows) "
    "SELECT w.key, w.value->>'target', w.value->>'desktop', w.value->'watermark', $1, clock_timestamp(), "
    "(SELECT count(*) FROM stagesync.reverse_rows b WHERE b.entry = w.key AND b.desktop_hash IS NOT NULL) "
    "FROM stagesync.reverse_pending p, jsonb_each(p.watermarks) w WHERE p.run_id = $1 "
    "ON CONFLICT (entry) DO UPDATE SET watermark = EXCLUDED.watermark, last_run_id = EXCLUDED.last_run_id, "
    "last_success_at = EXCLUDED.last_success_at, copied_rows = EXCLUDED.copied_rows, "
    "target_table = EXCLUDED.target_table, desktop_table = EXCLUDED.desktop_table",
    "UPDATE stagesync.runs SET status = 'succeeded', finished_at = clock_timestamp(), error = NULL WHERE run_id = $1",
    "DELETE FROM stagesync.reverse_pending_rows WHERE run_id = $1",
    "DELETE FROM stagesync.reverse_pending WHERE run_id = $1",
};

const char* const kDiscard[] = {
    "UPDATE stagesync.runs SET status = 'failed', finished_at = coalesce(finished_at, clock_timestamp()), "
    "error = coalesce(error, 'the desktop transaction did not commit; nothing was written to the desktop') "
    "WHERE run_id = $1 AND status <> 'succeeded'",
    "DELETE FROM stagesync.reverse_pending_rows WHERE run_id = $1",
    "DELETE FROM stagesync.reverse_pending WHERE run_id = $1",
};

}  // namespace

const char* const* reverse_promote_sql(int& count) {
  count = static_cast<int>(sizeof kPromote / sizeof kPromote[0]);
  return kPromote;
}

const char* const* reverse_discard_sql(int& count) {
  count = static_cast<int>(sizeof kDiscard / sizeof kDiscard[0]);
  return kDiscard;
}

}  // namespace stagesync::state
