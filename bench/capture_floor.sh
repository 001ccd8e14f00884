#!/usr/bin/env bash
# The floor of a `capture: logical` batch (docs/performance.md, "Continuous sync", capture floor): the same
# change applied by the least work any design that reads changed rows from the desktop must do, timed against
# `stagesync follow --once` of the same change.
#
# Usage: bench/capture_floor.sh DESKTOP_URL FLOOR_URL FLOOR_CONFIG FOLLOW_CONFIG [STAGESYNC]
#   DESKTOP_URL   the desktop of `follow_bench --only capture --keep` (database capture_desktop)
#   FLOOR_URL     a target database holding what the desktop holds now (e.g. capture_b after a full sync)
#   FLOOR_CONFIG  the configuration syncing the desktop to FLOOR_URL: its `sync --mode full`, timed after the
#                 floor, is the 100% (and shows what the floor left different: it should write nothing)
#   FOLLOW_CONFIG a configuration whose follower is in step with the desktop (its slot exists)
#
# The change (each statement its own transaction, keys recorded on the desktop as the WAL would name them):
# 1% of jobtasks and 1% of jobshead updated, 1% of climaster, cliunimaster, jobshead and jobtasks deleted.
# The floor knows the changed keys for free (as the WAL gives them) and does, in one session per server,
# nothing else: reads the updated rows from the desktop by key (jobtasks with its client_id lookup), COPYs
# them into temporary tables on the target, and in one transaction DELETEs the deleted keys and the jobtasks
# left without a jobshead (its `on_orphan: skip` reference), UPDATEs the rows whose values differ and INSERTs
# the staged rows the target lacks. No ownership, scope, reference,
# guard, set-aside or run record. Every figure is wall time.
set -euo pipefail
desk=$1 floor=$2 floor_config=$3 config=$4 stagesync=${5:-./build/stagesync}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
now() { date +%s.%N; }

psql -qX "$desk" -v ON_ERROR_STOP=1 <<'SQL'
DROP TABLE IF EXISTS floor_upd_jobtasks, floor_upd_jobshead, floor_del_jobtasks, floor_del_jobshead,
  floor_del_climaster, floor_del_cliunimaster;
CREATE TABLE floor_upd_jobtasks AS WITH u AS (UPDATE jobtasks SET task_notes = coalesce(task_notes, '') || ' (floor)'
  WHERE ctid IN (SELECT ctid FROM jobtasks TABLESAMPLE BERNOULLI (1)) RETURNING job_id, task_id) SELECT * FROM u;
CREATE TABLE floor_upd_jobshead AS WITH u AS (UPDATE jobshead SET work_desc = coalesce(work_desc, '') || ' (floor)'
  WHERE ctid IN (SELECT ctid FROM jobshead TABLESAMPLE BERNOULLI (1)) RETURNING job_id, sporg_id) SELECT * FROM u;
CREATE TABLE floor_del_jobtasks AS WITH d AS (DELETE FROM jobtasks
  WHERE ctid IN (SELECT ctid FROM jobtasks TABLESAMPLE BERNOULLI (1)) RETURNING job_id, task_id) SELECT * FROM d;
CREATE TABLE floor_del_jobshead AS WITH d AS (DELETE FROM jobshead
  WHERE ctid IN (SELECT ctid FROM jobshead TABLESAMPLE BERNOULLI (1)) RETURNING job_id, sporg_id) SELECT * FROM d;
CREATE TABLE floor_del_climaster AS WITH d AS (DELETE FROM climaster
  WHERE ctid IN (SELECT ctid FROM climaster TABLESAMPLE BERNOULLI (1)) RETURNING client_id) SELECT * FROM d;
CREATE TABLE floor_del_cliunimaster AS WITH d AS (DELETE FROM cliunimaster
  WHERE ctid IN (SELECT ctid FROM cliunimaster TABLESAMPLE BERNOULLI (1)) RETURNING cliunit_id) SELECT * FROM d;
VACUUM ANALYZE;
CHECKPOINT;
SQL
for t in jobtasks jobshead climaster cliunimaster; do
  [ "$t" = jobtasks ] || [ "$t" = jobshead ] && echo "$t: $(psql -AtqX "$desk" -c "SELECT count(*) FROM floor_upd_$t") updated, " | tr -d '\n'
  echo "$t: $(psql -AtqX "$desk" -c "SELECT count(*) FROM floor_del_$t") deleted"
done
# The keys the WAL would name, moved to files before the clock starts.
for t in jobtasks jobshead climaster cliunimaster; do
  psql -qX "$desk" -c "\\copy floor_del_$t TO '$dir/del_$t'"
done
for t in jobtasks jobshead; do psql -qX "$desk" -c "\\copy floor_upd_$t TO '$dir/upd_$t'"; done
psql -qX "$floor" -c "VACUUM ANALYZE" -c "CHECKPOINT"

start=$(now)
psql -qX "$desk" <<SQL
SET jit = off;
\\copy (SELECT t.job_id, t.task_id, l.client_id, t.staff_id, t.task_status, t.task_date, t.completed_date, t.minutes, t.actual_hours, t.task_notes, t.created_at, t.updated_at FROM jobtasks t LEFT JOIN (SELECT job_id, min(client_id) AS client_id FROM jobshead WHERE job_id IN (SELECT job_id FROM floor_upd_jobtasks) GROUP BY job_id) l ON l.job_id = t.job_id WHERE (t.job_id, t.task_id) IN (SELECT job_id, task_id FROM floor_upd_jobtasks)) TO '$dir/rows_jobtasks'
\\copy (SELECT DISTINCT ON (job_id, sporg_id) job_id, sporg_id, job_uid, year_id, client_id, jobdate, targetdate, work_desc, job_status, created_at, updated_at FROM jobshead WHERE (job_id, sporg_id) IN (SELECT job_id, sporg_id FROM floor_upd_jobshead) ORDER BY job_id, sporg_id, updated_at DESC NULLS LAST) TO '$dir/rows_jobshead'
SQL
read_done=$(now)
psql -qX "$floor" -v ON_ERROR_STOP=1 <<SQL
SET jit = off;
BEGIN;
CREATE TEMP TABLE s_jobtasks (job_id int, task_id int, client_id int, staff_id int, task_status varchar, task_date date, completed_date date, minutes int, actual_hours numeric, task_notes text, created_at timestamptz, updated_at timestamptz) ON COMMIT DROP;
CREATE TEMP TABLE s_jobshead (job_id int, sporg_id int, job_uid varchar, year_id int, client_id int, jobdate date, targetdate date, work_desc text, job_status varchar, created_at timestamptz, updated_at timestamptz) ON COMMIT DROP;
CREATE TEMP TABLE d_jobtasks (job_id int, task_id int) ON COMMIT DROP;
CREATE TEMP TABLE d_jobshead (job_id int, sporg_id int) ON COMMIT DROP;
CREATE TEMP TABLE d_climaster (client_id int) ON COMMIT DROP;
CREATE TEMP TABLE d_cliunimaster (cliunit_id int) ON COMMIT DROP;
\\copy s_jobtasks FROM '$dir/rows_jobtasks'
\\copy s_jobshead FROM '$dir/rows_jobshead'
\\copy d_jobtasks FROM '$dir/del_jobtasks'
\\copy d_jobshead FROM '$dir/del_jobshead'
\\copy d_climaster FROM '$dir/del_climaster'
\\copy d_cliunimaster FROM '$dir/del_cliunimaster'
ANALYZE s_jobtasks; ANALYZE s_jobshead; ANALYZE d_jobtasks; ANALYZE d_jobshead;
DELETE FROM jobtasks t USING d_jobtasks d WHERE d.job_id = t.job_id AND d.task_id = t.task_id;
DELETE FROM jobshead t USING d_jobshead d WHERE d.job_id = t.job_id AND d.sporg_id = t.sporg_id;
DELETE FROM jobtasks t WHERE t.job_id IN (SELECT job_id FROM d_jobshead) AND NOT EXISTS (SELECT 1 FROM jobshead p WHERE p.job_id = t.job_id);
DELETE FROM cliunimaster t USING d_cliunimaster d WHERE d.cliunit_id = t.cliunit_id;
DELETE FROM climaster t USING d_climaster d WHERE d.client_id = t.client_id;
UPDATE jobshead t SET job_uid = s.job_uid, year_id = s.year_id, client_id = s.client_id, jobdate = s.jobdate, targetdate = s.targetdate, work_desc = s.work_desc, job_status = s.job_status, created_at = s.created_at, updated_at = s.updated_at FROM s_jobshead s WHERE s.job_id = t.job_id AND s.sporg_id = t.sporg_id AND (t.job_uid, t.year_id, t.client_id, t.jobdate, t.targetdate, t.work_desc, t.job_status) IS DISTINCT FROM (s.job_uid, s.year_id, s.client_id, s.jobdate, s.targetdate, s.work_desc, s.job_status);
INSERT INTO jobshead (job_id, sporg_id, job_uid, year_id, client_id, jobdate, targetdate, work_desc, job_status, created_at, updated_at) SELECT s.* FROM s_jobshead s WHERE NOT EXISTS (SELECT 1 FROM jobshead t WHERE t.job_id = s.job_id AND t.sporg_id = s.sporg_id);
UPDATE jobtasks t SET client_id = s.client_id, staff_id = s.staff_id, task_status = s.task_status, task_date = s.task_date, completed_date = s.completed_date, minutes = s.minutes, actual_hours = s.actual_hours, task_notes = s.task_notes, created_at = s.created_at, updated_at = s.updated_at FROM s_jobtasks s WHERE s.job_id = t.job_id AND s.task_id = t.task_id AND (t.client_id, t.staff_id, t.task_status, t.task_date, t.completed_date, t.minutes, t.actual_hours, t.task_notes) IS DISTINCT FROM (s.client_id, s.staff_id, s.task_status, s.task_date, s.completed_date, s.minutes, s.actual_hours, s.task_notes);
INSERT INTO jobtasks (job_id, task_id, client_id, staff_id, task_status, task_date, completed_date, minutes, actual_hours, task_notes, created_at, updated_at) SELECT s.* FROM s_jobtasks s WHERE NOT EXISTS (SELECT 1 FROM jobtasks t WHERE t.job_id = s.job_id AND t.task_id = s.task_id) AND EXISTS (SELECT 1 FROM jobshead p WHERE p.job_id = s.job_id);
COMMIT;
SQL
floor_done=$(now)
"$stagesync" follow --once --config "$config" --json > "$dir/follow.json"
follow_done=$(now)
psql -qX "$floor" -c "VACUUM ANALYZE" -c "CHECKPOINT"
full_start=$(now)
"$stagesync" sync --mode full --config "$floor_config" --json > "$dir/full.json"
full_done=$(now)
python3 - "$start" "$read_done" "$floor_done" "$follow_done" "$full_start" "$full_done" "$dir/follow.json" \
  "$dir/full.json" <<'PY'
import json, sys
start, read, floor, follow, full_start, full = map(float, sys.argv[1:7])
def summary(path):
    return [json.loads(l) for l in open(path) if '"summary"' in l][-1]
f, s = summary(sys.argv[7]), summary(sys.argv[8])
written = {t['target']: '%d/%d/%d' % (t['counts']['inserted'], t['counts']['updated'], t['counts']['deleted'])
           for t in s['tables'] if t['counts']['inserted'] + t['counts']['updated'] + t['counts']['deleted']}
base = full - full_start
print(f"full sync (100%): {base:.2f} s, exit {s['exit_code']}; rows it wrote after the floor (inserted/updated/deleted; none: the floor was exact): {written or 'none'}")
print(f"floor: {floor - start:.2f} s = {100 * (floor - start) / base:.1f}% (desktop reads {read - start:.2f} s, target {floor - read:.2f} s)")
print(f"stagesync follow --once: {follow - floor:.2f} s = {100 * (follow - floor) / base:.1f}% (exit {f['exit_code']}); {(follow - floor) / (floor - start):.2f}x the floor")
PY
