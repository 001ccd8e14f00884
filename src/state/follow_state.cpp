#include "state/follow_state.h"

#include "state/metadata.h"

namespace stagesync::state {
namespace {

// Whether the table exists (an older or absent metadata schema: no follower).
bool has_table(pg::Connection& target) {
  return target.exec("SELECT pg_catalog.to_regclass('stagesync.follow_state') IS NOT NULL").text(0, 0) == "t";
}

const char* kColumns =
    "slot_name, scope_key, source, confirmed_lsn::text, coalesce(last_run_id, ''), batches, "
    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "extract(epoch FROM clock_timestamp() - updated_at)::float8";

FollowState from_row(const pg::Result& r, int row) {
  FollowState s;
  s.slot_name = r.text(row, 0);
  s.scope_key = r.text(row, 1);
  s.source = r.text(row, 2);
  s.confirmed_lsn = r.text(row, 3);
  s.last_run_id = r.text(row, 4);
  s.batches = r.int64(row, 5);
  s.updated_at = r.text(row, 6);
  s.lag_seconds = std::stod(r.text(row, 7));
  return s;
}

}  // namespace

std::optional<FollowState> read_follow_state(pg::Connection& target, const std::string& slot_name) {
  if (!has_table(target)) return std::nullopt;
  pg::Result r = target.exec(std::string("SELECT ") + kColumns + " FROM stagesync.follow_state WHERE slot_name = $1",
                             std::vector<pg::Param>{slot_name});
  if (r.rows() == 0) return std::nullopt;
  return from_row(r, 0);
}

std::vector<FollowState> read_follow_states(pg::Connection& target) {
  std::vector<FollowState> out;
  if (!has_table(target)) return out;
  pg::Result r = target.exec(std::string("SELECT ") + kColumns + " FROM stagesync.follow_state ORDER BY slot_name");
  for (int row = 0; row < r.rows(); ++row) out.push_back(from_row(r, row));
  return out;
}

void record_follow_state(pg::Pipeline& batch, const FollowState& s, bool first) {
  batch.add(
      "INSERT INTO stagesync.follow_state (slot_name, scope_key, source, confirmed_lsn, last_run_id, batches) "
      "VALUES ($1, $2, $3, $4::pg_lsn, $5, 0) ON CONFLICT (slot_name) DO UPDATE SET scope_key = EXCLUDED.scope_key, "
      "source = EXCLUDED.source, confirmed_lsn = EXCLUDED.confirmed_lsn, last_run_id = EXCLUDED.last_run_id, "
      "batches = CASE WHEN $6 THEN 0 ELSE stagesync.follow_state.batches + 1 END, updated_at = clock_timestamp()" +
          std::string(first ? ", created_at = clock_timestamp()" : ""),
      std::vector<pg::Param>{s.slot_name, s.scope_key, s.source, s.confirmed_lsn, s.last_run_id,
                             first ? "true" : "false"});
}

void advance_follow_state(pg::Connection& target, const std::string& slot_name, const std::string& lsn) {
  target.exec(
      "UPDATE stagesync.follow_state SET confirmed_lsn = greatest(confirmed_lsn, $2::pg_lsn), "
      "updated_at = clock_timestamp() WHERE slot_name = $1",
      std::vector<pg::Param>{slot_name, lsn});
}

void forget_follow_state(pg::Connection& target, const std::string& slot_name) {
  if (!has_table(target)) return;
  target.exec("DELETE FROM stagesync.follow_state WHERE slot_name = $1", std::vector<pg::Param>{slot_name});
}

}  // namespace stagesync::state
