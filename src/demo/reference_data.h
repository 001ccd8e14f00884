// Reference data for `stagesync demo` and the benchmarks: the desktop schema of SPEC section 3, its
// cloud counterpart, deterministic rows of the real data's shape, and the matching configuration.
//
// Everything is plain SQL text, one statement per element, in the order it must run; callers execute
// it. String literals are written in ASCII only (E'...' with \u escapes), so the statements mean the
// same whatever the connection's client_encoding, but the databases must use the UTF8 encoding.
// The statements create objects without dropping anything first: run them on fresh databases.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stagesync::demo {

// Desktop (source) schema: no primary keys, no foreign keys, all columns nullable. Every synced table
// except taskchecklist has created_at/updated_at `timestamp without time zone`, kept by a BEFORE
// INSERT OR UPDATE trigger (insert: fills them when NULL; update: sets updated_at to the transaction
// time). taskchecklist has no change column, like some real desktop tables. Also creates the empty
// mobile-owned tables workdiary and learequest that reverse sync writes into (no trigger on them).
std::vector<std::string> desktop_schema_sql();

// The splitmix64 finaliser: the demo data's seeded choices are made from it.
uint64_t mix64(uint64_t x);

// Fills the desktop tables. scale 1.0 is one office (about 93,000 rows: climaster 729, jobshead 24,568,
// jobtasks 64,711, taskchecklist 2,894, mbreminder 130, mbremdetail 300, mbstaff 16, small masters);
// the masters orgmaster, locmaster, conmaster, taskmaster and jobmaster do not scale. Every row,
// timestamps included, is a function of (scale, seed): server-side INSERT ... SELECT over
// generate_series with hash-based pseudo-randomness. Ends with ANALYZE.
// Quirks of the real data: ~8% of climaster ids, ~9% of jobshead job ids and ~10% of mbreminder ids are
// gaps (deleted rows), so ~9% of jobshead.client_id (gaps or 0; another 1% are NULL), ~9% of
// jobtasks.job_id, 5-10% of mbremdetail.rem_id (1% NULL) and ~8% of cliunimaster.client_id point at
// missing parents; climaster.con_id is 0 for ~35% and NULL for ~15%; job_id 1 appears 24 times in
// jobshead (sporg_id differs, same client); (job_id, sporg_id) = (2..5, *) appear twice with different
// updated_at (2 and 3: the copy is newer; 4 and 5: the copy is older); jobtasks has 5 rows with a NULL
// key column; taskchecklist.tc_id is NULL for ~60% and ~1% of its rows repeat exactly; names and notes
// contain non-ASCII text, quotes, backslashes, tabs and newlines.
std::vector<std::string> desktop_data_sql(double scale, uint64_t seed);

// Cloud (target) schema: the synced tables (mbreminder -> reminder, mbremdetail -> remdetail) with
// primary keys on the configured keys (taskchecklist: on tc_id), `source char(1) NOT NULL DEFAULT 'D'`,
// created_at/updated_at timestamptz DEFAULT now(), identity columns jt_id, tc_id, wd_id, the extra
// target columns jobtasks.client_id and reminder.synced_by, jobshead without jctincharge, and the
// foreign key remdetail(rem_id) -> reminder(rem_id). Plus the mobile-owned workdiary and learequest
// (source DEFAULT 'M').
std::vector<std::string> cloud_schema_sql();

// Mobile-created rows on the target (source = 'M'): climaster 900000001..8 and 1..5 (1..5 collide with
// desktop clients), jobshead (900000001..10, 1) and (1, 101), (1, 102) (collide), reminder 900000001..6
// and 1, 2 (collide), remdetail 900000001..3 (children of mobile reminders), 60 workdiary rows and
// 12 learequest rows. Deterministic for a given seed.
std::vector<std::string> cloud_mobile_rows_sql(uint64_t seed);

// Desktop changes for the demo's second (incremental) sync, run in order once on data from
// desktop_data_sql: deletes one client (id > 11) with all its jobs and their tasks, deletes ~0.25% of
// jobtasks, updates ~1% of jobshead and jobtasks rows (the trigger bumps updated_at), renames client 7 to
// non-ASCII text, inserts 5 clients, 20 jobs with 2 tasks each, 3 taskchecklist rows and a reminder with
// 2 details, updates ~1% of the 'N' taskchecklist rows and one reminder. Deterministic except for the
// updated_at values the trigger sets.
std::vector<std::string> desktop_changes_sql(uint64_t seed);

// The demo's stagesync configuration (SPEC section 4) for these schemas.
std::string demo_config_yaml(const std::string& source_url, const std::string& target_url);

}  // namespace stagesync::demo
