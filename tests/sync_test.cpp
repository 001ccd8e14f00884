// Full sync against real servers: mapping, ownership and scope, idempotence,
// references, duplicates, keyless tables, refused rows, --tables.
// Writes are observed through row versions (ctid, xmin), never by trusting
// the tool's own counts.
#include <gtest/gtest.h>

#include "apply/table_counts.h"
#include "config/config.h"
#include "plan/target_triggers.h"
#include "run/check_run.h"
#include "state/history.h"
#include "state/metadata.h"
#include "support/sync_fixture.h"

namespace stagesync::testing {
namespace {

using apply::Strategy;

const report::TableResult& table(const report::RunSummary& s, const std::string& name) {
  for (const auto& t : s.tables)
    if (t.target == name) return t;
  throw std::runtime_error("no table " + name + " in summary");
}

class Sync : public SyncFixture {
 protected:
  // Desktop clients and a cloud copy shared with the mobile app.
  void clients_schema() {
    src().exec(
        "CREATE TABLE climaster (client_id int, org_id int, con_id int, client_name varchar(60), note text, "
        "updated_at timestamp);"
        "INSERT INTO climaster VALUES (1, 3, 0, 'Müller & Söhne', 'a', '2024-01-01 10:00'),"
        " (2, 3, NULL, 'Zoë', NULL, '2024-01-02 10:00'), (3, 3, 5, 'Łódź Ltd', 'c', NULL),"
        " (4, 4, 1, 'Other org', 'd', '2024-01-03 10:00');");
    tgt().exec(
        "CREATE TABLE climaster (client_id int PRIMARY KEY, org_id int, con_id int, client_name varchar(80), note text, "
        "updated_at timestamptz, source char(1) NOT NULL DEFAULT 'D');"
        "INSERT INTO climaster VALUES (100, 3, 0, 'mobile client', 'm', now(), 'M'),"
        " (3, 3, 0, 'mobile owns key 3', 'm', now(), 'M'), (7, 3, 0, 'stale desktop row', 'x', now(), 'D');");
  }
  std::string clients_config(const std::string& extra_table = "", const std::string& extra_top = "") {
    return config_with_tables("  - { name: climaster, key: [client_id]" + extra_table + " }\n",
                              "owner: { column: source, value: D }\n" + extra_top);
  }
};

TEST_F(Sync, FullMergeMakesOwnedRowsEqualTheSource) {
  clients_schema();
  auto s = sync(clients_config());
  EXPECT_EQ(s.outcome, "succeeded");
  // Desktop rows 1, 2, 4 inserted; 3 collides with a mobile row; stale 7 deleted.
  EXPECT_EQ(column("SELECT client_id FROM climaster WHERE source = 'D' ORDER BY 1"),
            (std::vector<std::string>{"1", "2", "4"}));
  EXPECT_EQ(column("SELECT client_name FROM climaster WHERE client_id = 1"), (std::vector<std::string>{"Müller & Söhne"}));
  const auto& t = table(s, "climaster");
  EXPECT_EQ(t.counts.read, 4);
  EXPECT_EQ(t.counts.inserted, 3);
  EXPECT_EQ(t.counts.deleted, 1);
  EXPECT_EQ(t.counts.collisions, 1);
  // The collision is recorded in the same transaction as the data.
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.rejects WHERE row_key LIKE '%3%' AND reason LIKE '%does not own%'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.runs WHERE status = 'succeeded'"), 1);
  EXPECT_EQ(count("SELECT inserted FROM stagesync.table_runs"), 3);
}

TEST_F(Sync, ForeignRowsAreByteIdenticalAfterEveryStrategy) {
  clients_schema();
  std::string foreign = "(SELECT ctid, xmin, * FROM climaster WHERE source <> 'D')";
  std::string before = content(foreign);
  std::string cfg = clients_config();
  sync(cfg);
  EXPECT_EQ(content(foreign), before);
  src().exec("UPDATE climaster SET client_name = 'changed' WHERE client_id = 3; DELETE FROM climaster WHERE client_id = 2");
  sync(cfg, Strategy::Swap);
  EXPECT_EQ(content(foreign), before);
  sync(cfg, Strategy::Merge);
  EXPECT_EQ(content(foreign), before);
  EXPECT_EQ(column("SELECT client_name FROM climaster WHERE client_id = 3"), (std::vector<std::string>{"mobile owns key 3"}));
}

TEST_F(Sync, SecondRunWritesNothing) {
  clients_schema();
  std::string cfg = clients_config();
  sync(cfg);
  std::string v = versions("climaster");
  auto s = sync(cfg);
  EXPECT_EQ(versions("climaster"), v) << "a run with no source change rewrote rows";
  const auto& t = table(s, "climaster");
  EXPECT_EQ(t.counts.inserted + t.counts.updated + t.counts.deleted, 0);
  // And a real change is picked up, touching only the changed row.
  src().exec("UPDATE climaster SET note = 'new' WHERE client_id = 1");
  auto s2 = sync(cfg);
  EXPECT_EQ(table(s2, "climaster").counts.updated, 1);
  EXPECT_EQ(column("SELECT note FROM climaster WHERE client_id = 1"), (std::vector<std::string>{"new"}));
  EXPECT_EQ(count("SELECT count(*) FROM pg_class WHERE relnamespace = 'stagesync'::regnamespace AND relname LIKE 's\\_%'"), 0)
      << "staging tables must be dropped after a run";
}

TEST_F(Sync, SwapReplacesOwnedRowsAndConverges) {
  clients_schema();
  std::string cfg = clients_config();
  auto s = sync(cfg, Strategy::Swap);
  EXPECT_EQ(table(s, "climaster").counts.deleted, 1);   // the stale owned row 7
  EXPECT_EQ(table(s, "climaster").counts.inserted, 3);  // 1, 2, 4 (3 collides)
  std::string after_swap = content("climaster");
  auto m = sync(cfg, Strategy::Merge);
  EXPECT_EQ(content("climaster"), after_swap);
  EXPECT_EQ(table(m, "climaster").counts.updated + table(m, "climaster").counts.inserted, 0);
}

TEST_F(Sync, ScopeLimitsBothSides) {
  clients_schema();
  tgt().exec("INSERT INTO climaster VALUES (50, 4, 0, 'org 4 desktop row', 'z', now(), 'D')");
  std::string out_of_scope = content("(SELECT ctid, xmin, * FROM climaster WHERE org_id <> 3)");
  auto s = sync(clients_config("", "scope: { org_id: 3 }\n"));
  // Source row 4 (org 4) is not read; target row 50 (org 4, owned by D) is not deleted.
  EXPECT_EQ(table(s, "climaster").counts.read, 3);
  EXPECT_EQ(content("(SELECT ctid, xmin, * FROM climaster WHERE org_id <> 3)"), out_of_scope);
  EXPECT_EQ(column("SELECT client_id FROM climaster WHERE source = 'D' AND org_id = 3 ORDER BY 1"),
            (std::vector<std::string>{"1", "2"}));
}

TEST_F(Sync, MappingRenameSkipGeneratedSetAndLookup) {
  src().exec(
      "CREATE TABLE jobshead (job_id int, sporg_id int, client_id int, work_desc text, jctincharge text);"
      "INSERT INTO jobshead VALUES (10, 1, 500, 'job ten', 'secret'), (10, 2, 500, 'job ten b', 's'), "
      "(11, 1, 501, 'eleven', 's');"
      "CREATE TABLE jobtasks (jt_id int, job_id int, task_id int, minutes int, source text);"
      "INSERT INTO jobtasks VALUES (NULL, 10, 1, 30, 'X'), (77, 11, 1, 45, 'X'), (78, 99, 1, 5, 'X');");
  tgt().exec(
      "CREATE TABLE jobs (job_id int, sporg_id int, client_id int, work_desc text, synced_by text, "
      "source char(1) NOT NULL DEFAULT 'D', PRIMARY KEY (job_id, sporg_id));"
      "CREATE TABLE jobtasks (jt_id bigint GENERATED ALWAYS AS IDENTITY, job_id int, task_id int, client_id int, "
      "minutes int, source char(1) NOT NULL DEFAULT 'D', PRIMARY KEY (job_id, task_id));");
  std::string cfg = config_with_tables(
      "  - { name: jobshead, target: jobs, key: [job_id, sporg_id], skip: [jctincharge], set: { synced_by: stagesync } }\n"
      "  - name: jobtasks\n    key: [job_id, task_id]\n    generated: [jt_id]\n"
      "    lookups: [ { column: client_id, from: jobshead, match: [job_id], take: client_id } ]\n",
      "owner: { column: source, value: D }\n");
  sync(cfg);
  EXPECT_EQ(column("SELECT job_id || '/' || sporg_id || '/' || synced_by || '/' || source FROM jobs ORDER BY 1"),
            (std::vector<std::string>{"10/1/stagesync/D", "10/2/stagesync/D", "11/1/stagesync/D"}));
  // Lookup filled client_id; the unmatched job 99 gets NULL; the source's own `source` column is not sent.
  EXPECT_EQ(column("SELECT job_id || ':' || coalesce(client_id::text, 'NULL') || ':' || source FROM jobtasks ORDER BY 1"),
            (std::vector<std::string>{"10:500:D", "11:501:D", "99:NULL:D"}));
  // jt_id comes from the target's identity, never from the source (77, 78, NULL).
  std::vector<std::string> ids = column("SELECT jt_id FROM jobtasks ORDER BY job_id");
  EXPECT_EQ(ids, (std::vector<std::string>{"1", "2", "3"}));
  // Generated values are never overwritten by later runs.
  src().exec("UPDATE jobtasks SET minutes = 99, jt_id = 5 WHERE job_id = 11");
  sync(cfg);
  EXPECT_EQ(column("SELECT jt_id || ':' || minutes FROM jobtasks WHERE job_id = 11"), (std::vector<std::string>{"2:99"}));
}

TEST_F(Sync, LookupTakesTheSmallestNonNullValueWhereSeveralRowsMatch) {
  // Integer values are aggregated with min(), uuid values (no min()) with
  // DISTINCT ON: both must pick the same value, whatever the rows' order.
  src().exec(
      "CREATE TABLE heads (job_id int, client_id int, ref uuid);"
      "INSERT INTO heads VALUES (1, NULL, NULL), (1, 9, 'ffffffff-0000-0000-0000-000000000000'), (1, 3, NULL),"
      " (1, NULL, '00000000-0000-0000-0000-00000000000a'), (2, NULL, NULL), (3, 7, '00000000-0000-0000-0000-000000000001');"
      "CREATE TABLE tasks (job_id int, task_id int);"
      "INSERT INTO tasks VALUES (1, 1), (2, 1), (3, 1), (4, 1);");
  tgt().exec("CREATE TABLE tasks (job_id int, task_id int, client_id int, ref uuid, PRIMARY KEY (job_id, task_id));");
  std::string cfg = config_with_tables(
      "  - name: tasks\n    key: [job_id, task_id]\n"
      "    lookups:\n"
      "      - { column: client_id, from: heads, match: [job_id], take: client_id }\n"
      "      - { column: ref, from: heads, match: [job_id], take: ref }\n");
  sync(cfg);
  EXPECT_EQ(column("SELECT job_id || ':' || coalesce(client_id::text, 'NULL') || ':' || coalesce(ref::text, 'NULL') "
                   "FROM tasks ORDER BY job_id"),
            (std::vector<std::string>{"1:3:00000000-0000-0000-0000-00000000000a", "2:NULL:NULL",
                                      "3:7:00000000-0000-0000-0000-000000000001", "4:NULL:NULL"}));
}

TEST_F(Sync, OlderMetadataIsUpgradedInPlaceAndNewerIsRefused) {
  clients_schema();
  std::string cfg = clients_config();
  sync(cfg);
  // Turn the metadata back into version 3 (foreign key and extra index of rejects).
  tgt().exec(
      "ALTER TABLE stagesync.rejects ADD CONSTRAINT rejects_run_id_fkey FOREIGN KEY (run_id) "
      "REFERENCES stagesync.runs ON DELETE CASCADE;"
      "CREATE INDEX rejects_run ON stagesync.rejects (run_id);"
      "DROP TABLE stagesync.set_aside;"
      "UPDATE stagesync.meta SET schema_version = 3;");
  int64_t runs = count("SELECT count(*) FROM stagesync.runs");
  int64_t rejects = count("SELECT count(*) FROM stagesync.rejects");
  ASSERT_GT(rejects, 0);
  // Version 7: the rows currently set aside are those of each table's last run.
  state::ensure_metadata(tgt());
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.set_aside a JOIN stagesync.table_state st USING (table_name) "
                  "WHERE a.run_id = st.last_run_id"),
            rejects);
  sync(cfg);
  EXPECT_EQ(count("SELECT schema_version FROM stagesync.meta"), state::kMetadataVersion);
  EXPECT_EQ(count("SELECT count(*) FROM pg_catalog.pg_constraint WHERE conname = 'rejects_run_id_fkey'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'rejects_run'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.runs"), runs + 1) << "history is kept";
  EXPECT_GE(count("SELECT count(*) FROM stagesync.rejects"), 2 * rejects);
  // Metadata from a newer stagesync: an error that says so, and nothing written.
  tgt().exec("UPDATE stagesync.meta SET schema_version = 99");
  std::string before = content("climaster");
  CliResult r = cli({"sync", "--config", cfg});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("version 99, newer than this stagesync understands"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(content("climaster"), before);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.runs"), runs + 1);
}

TEST_F(Sync, OldRunRecordsArePrunedAfterTheCommitExceptRunsStillNamed) {
  // A follower writes a run per batch: runs older than history.keep_days go
  // after each forward run's COMMIT, with their table records and rejects,
  // at most state::kPruneRuns a time, oldest first; never a run that a
  // backup, a table's state or a follower names.
  clients_schema();
  sync(clients_config());
  tgt().exec(
      "INSERT INTO stagesync.runs (run_id, command, status) SELECT pg_catalog.to_char(timestamp '2020-01-01' + g * "
      "interval '1 second', 'YYYYMMDD\"T\"HH24MISS') || '_' || lpad(to_hex(g), 6, '0'), 'sync', 'succeeded' "
      "FROM generate_series(1, 60) g;"
      "INSERT INTO stagesync.runs (run_id, command, status) VALUES ('20200102T000000_backup', 'sync', 'succeeded'),"
      " ('20200102T000001_tstate', 'sync', 'failed'), ('20200102T000002_follow', 'follow', 'succeeded'),"
      " (pg_catalog.to_char(pg_catalog.timezone('UTC', now()) - interval '10 days', 'YYYYMMDD\"T\"HH24MISS') || "
      "'_recent', 'sync', 'succeeded');"
      "INSERT INTO stagesync.backups (backup_id, reason, run_id) VALUES ('b', 'test', '20200102T000000_backup');"
      "INSERT INTO stagesync.table_state (table_name, source_table, last_run_id) VALUES ('removed', 'removed', "
      "'20200102T000001_tstate');"
      "INSERT INTO stagesync.follow_state (slot_name, scope_key, source, confirmed_lsn, last_run_id) VALUES ('slot', "
      "'k', 's', '0/1', '20200102T000002_follow');"
      "INSERT INTO stagesync.table_runs (run_id, table_name, source_table) SELECT run_id, 'climaster', 'climaster' "
      "FROM stagesync.runs WHERE run_id < '2021' OR run_id LIKE '%_recent';"
      "INSERT INTO stagesync.rejects (run_id, table_name, row_key, reason) SELECT run_id, 'climaster', '{}', 'test' "
      "FROM stagesync.runs WHERE run_id < '2021' OR run_id LIKE '%_recent';");
  auto old = [&](const std::string& table) {
    return count("SELECT count(*) FROM stagesync." + table + " WHERE run_id < '2021' OR run_id LIKE '%_recent'");
  };
  auto unnamed = [&] { return count("SELECT count(*) FROM stagesync.runs WHERE run_id LIKE '20200101%'"); };
  sync(clients_config("", "history: { keep_days: 0 }\n"));
  EXPECT_EQ(old("runs"), 64) << "keep_days 0 keeps every run";
  sync(clients_config());
  EXPECT_EQ(unnamed(), 60 - state::kPruneRuns);
  EXPECT_EQ(column("SELECT min(run_id) FROM stagesync.runs WHERE run_id LIKE '20200101%'"),
            (std::vector<std::string>{"20200101T000051_000033"}))
      << "oldest first";
  EXPECT_EQ(old("table_runs"), 64 - state::kPruneRuns) << "a run's table records go with it";
  EXPECT_EQ(old("rejects"), 64 - state::kPruneRuns) << "and its rejects";
  sync(clients_config());
  EXPECT_EQ(unnamed(), 0);
  EXPECT_EQ(
      column("SELECT run_id FROM stagesync.runs WHERE run_id < '2021' OR run_id LIKE '%_recent' ORDER BY 1").size(),
      4u);
  EXPECT_EQ(old("table_runs"), 4);
  EXPECT_EQ(old("rejects"), 4);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.runs WHERE status = 'succeeded' AND command = 'sync' AND run_id > "
                  "'2021' AND run_id NOT LIKE '%_recent'"),
            4)
      << "this test's own runs are kept";
}

TEST_F(Sync, CompositeKeyNullKeysAreRejectedAndReported) {
  src().exec("CREATE TABLE t (a int, b int, v text); INSERT INTO t VALUES (1, 1, 'x'), (1, NULL, 'y'), (NULL, 2, 'z')");
  tgt().exec("CREATE TABLE t (a int, b int, v text, PRIMARY KEY (a, b))");
  auto s = sync(config_with_tables("  - { name: t, key: [a, b] }\n"));
  EXPECT_EQ(table(s, "t").counts.rejected, 2);
  EXPECT_EQ(count("SELECT count(*) FROM t"), 1);
  EXPECT_EQ(column("SELECT column_name FROM stagesync.rejects ORDER BY 1"), (std::vector<std::string>{"a", "b"}));
}

TEST_F(Sync, DuplicateKeysFailByDefaultAndChangeNothing) {
  src().exec("CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a'), (1, 'b'), (2, 'c')");
  tgt().exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (9, 'old')");
  std::string before = content("t");
  std::string cfg = config_with_tables("  - { name: t, key: [id] }\n");
  try {
    sync(cfg);
    FAIL() << "duplicate keys must stop the run";
  } catch (const apply::DataRefused& e) {
    EXPECT_NE(std::string(e.what()).find("{\"id\" : 1} appears 2 times"), std::string::npos) << e.what();
  }
  EXPECT_EQ(content("t"), before);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.runs WHERE status = 'failed'"), 1);
}

TEST_F(Sync, DuplicatesKeepNewestWithNullsOldestAndDeterministicTies) {
  src().exec(
      "CREATE TABLE t (id int, v text, changed timestamp);"
      "INSERT INTO t VALUES (1, 'old', '2024-01-01'), (1, 'new', '2024-06-01'), (1, 'null', NULL),"
      " (2, 'only-null', NULL), (2, 'dated', '2020-01-01'),"
      " (3, 'tie-a', '2024-01-01'), (3, 'tie-b', '2024-01-01')");
  tgt().exec("CREATE TABLE t (id int PRIMARY KEY, v text, changed timestamptz)");
  std::string cfg = config_with_tables("  - { name: t, key: [id], duplicates: { keep: newest, by: changed } }\n");
  auto s = sync(cfg);
  EXPECT_EQ(table(s, "t").counts.duplicates_dropped, 4);
  std::vector<std::string> first = column("SELECT v FROM t ORDER BY id");
  EXPECT_EQ(first[0], "new");
  EXPECT_EQ(first[1], "dated");
  // Ties resolve the same way whatever the physical order of the source rows.
  src().exec("CREATE TABLE t2 AS SELECT * FROM t ORDER BY v DESC; DROP TABLE t; ALTER TABLE t2 RENAME TO t");
  std::string v = versions("t");
  sync(cfg);
  EXPECT_EQ(column("SELECT v FROM t ORDER BY id"), first);
  EXPECT_EQ(versions("t"), v);
}

TEST_F(Sync, KeylessTablesAreComparedAsMultisets) {
  src().exec(
      "CREATE TABLE taskchecklist (tc_id int, job_id int, checklistdesc text);"
      "INSERT INTO taskchecklist VALUES (NULL, 1, 'a'), (NULL, 1, 'a'), (5, 2, 'b'), (NULL, 3, NULL)");
  tgt().exec(
      "CREATE TABLE taskchecklist (tc_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, job_id int, "
      "checklistdesc text, source char(1) NOT NULL DEFAULT 'D');"
      "INSERT INTO taskchecklist (job_id, checklistdesc, source) VALUES (1, 'a', 'M'), (8, 'gone', 'D')");
  std::string cfg = config_with_tables("  - { name: taskchecklist, key: none, generated: [tc_id] }\n",
                                       "owner: { column: source, value: D }\n");
  auto s = sync(cfg);
  EXPECT_EQ(table(s, "taskchecklist").counts.inserted, 4);
  EXPECT_EQ(table(s, "taskchecklist").counts.deleted, 1);
  EXPECT_EQ(count("SELECT count(*) FROM taskchecklist WHERE source = 'D' AND job_id = 1"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM taskchecklist WHERE source = 'M'"), 1);
  std::string v = versions("taskchecklist");
  sync(cfg);
  EXPECT_EQ(versions("taskchecklist"), v) << "keyless re-run must write nothing";
  // Remove one of two identical rows and add a third copy of another: exactly one delete, one insert.
  src().exec("DELETE FROM taskchecklist WHERE ctid = (SELECT min(ctid) FROM taskchecklist WHERE job_id = 1);"
             "INSERT INTO taskchecklist VALUES (NULL, 2, 'b')");
  std::string untouched = content("(SELECT tc_id, xmin FROM taskchecklist WHERE job_id = 3)");
  auto s2 = sync(cfg);
  EXPECT_EQ(table(s2, "taskchecklist").counts.deleted, 1);
  EXPECT_EQ(table(s2, "taskchecklist").counts.inserted, 1);
  EXPECT_EQ(count("SELECT count(*) FROM taskchecklist WHERE source = 'D' AND job_id = 1"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM taskchecklist WHERE job_id = 2"), 2);
  EXPECT_EQ(content("(SELECT tc_id, xmin FROM taskchecklist WHERE job_id = 3)"), untouched);
}

class References : public Sync {
 protected:
  void schema(const std::string& policy) {
    src().exec(
        "CREATE TABLE parent (id int, name text); INSERT INTO parent VALUES (1, 'p1'), (2, 'p2'), (3, 'new parent');"
        "CREATE TABLE child (id int, parent_id int); "
        "INSERT INTO child VALUES (10, 1), (11, 3), (12, 50), (13, NULL), (14, 60), (15, 4)");
    tgt().exec(
        "CREATE TABLE parent (id int PRIMARY KEY, name text, source char(1) NOT NULL DEFAULT 'D');"
        "INSERT INTO parent VALUES (50, 'mobile parent', 'M'), (4, 'owned, vanished from source', 'D');"
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int, source char(1) NOT NULL DEFAULT 'D');");
    cfg_ = config_with_tables(
        "  - { name: child, key: [id], references: [ { columns: [parent_id], parent: parent, on_orphan: " + policy +
            " } ] }\n  - { name: parent, key: [id] }\n",
        "owner: { column: source, value: D }\n");
  }
  std::string cfg_;
};

TEST_F(References, SkipJudgesAgainstParentsAfterThisRun) {
  schema("skip");
  auto s = sync(cfg_);
  // 10 (existing parent), 11 (parent staged in this run), 12 (mobile-owned parent),
  // 13 (NULL is not an orphan) pass; 14 (no parent) and 15 (parent 4 is deleted by this run) are skipped.
  EXPECT_EQ(column("SELECT id FROM child ORDER BY 1"), (std::vector<std::string>{"10", "11", "12", "13"}));
  EXPECT_EQ(table(s, "child").counts.rejected, 2);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.rejects WHERE table_name = 'child' AND reason LIKE 'no row in parent%'"), 2);
  // Apply order: parents were applied before children, in one transaction.
  EXPECT_EQ(s.tables.front().target, "parent");
  // A child synced earlier whose parent has since gone is removed by the next full run.
  src().exec("DELETE FROM parent WHERE id = 1");
  sync(cfg_);
  EXPECT_EQ(column("SELECT id FROM child ORDER BY 1"), (std::vector<std::string>{"11", "12", "13"}));
}

TEST_F(References, KeepSyncsOrphansAndCountsThem) {
  schema("keep");
  auto s = sync(cfg_);
  EXPECT_EQ(count("SELECT count(*) FROM child"), 6);
  EXPECT_EQ(table(s, "child").counts.orphans_kept, 2);
}

TEST_F(References, FailStopsBeforeAnythingIsApplied) {
  schema("fail");
  std::string parent_before = content("parent");
  EXPECT_THROW(sync(cfg_), apply::DataRefused);
  EXPECT_EQ(content("parent"), parent_before) << "the parent table must not be applied either";
  EXPECT_EQ(count("SELECT count(*) FROM child"), 0);
}

TEST_F(References, ParentNotInRunCountsExistingRowsOnly) {
  schema("skip");
  auto s = sync(cfg_, Strategy::Merge, {"child"});
  // parent is not synced in this run: its existing target rows (50, 4) are the parents.
  EXPECT_EQ(column("SELECT id FROM child ORDER BY 1"), (std::vector<std::string>{"12", "13", "15"}));
  EXPECT_EQ(s.tables.size(), 1u);
  EXPECT_EQ(count("SELECT count(*) FROM parent"), 2) << "--tables child must not touch parent";
}

// Issue 11 item 8: a target foreign key no `references:` entry declares. Rows
// violating it are refused before any write, all of them at once, naming the
// entry that would handle them (not the server's first error at the apply).
class UndeclaredForeignKey : public Sync {
 protected:
  void SetUp() override {
    Sync::SetUp();
    src().exec(
        "CREATE TABLE locmaster (loc_id int, name text); INSERT INTO locmaster VALUES (1, 'office');"
        "CREATE TABLE climaster (client_id int, loc_id int);"
        "INSERT INTO climaster VALUES (1, 1), (2, 2), (3, NULL), (4, 7), (5, 50)");
    tgt().exec(
        "CREATE TABLE locmaster (loc_id int PRIMARY KEY, name text, source char(1) NOT NULL DEFAULT 'D');"
        "INSERT INTO locmaster VALUES (50, 'mobile location', 'M'), (7, 'owned, vanished from the source', 'D');"
        "CREATE TABLE climaster (client_id int PRIMARY KEY, loc_id int REFERENCES locmaster, "
        "source char(1) NOT NULL DEFAULT 'D');"
        "INSERT INTO climaster VALUES (100, 50, 'M')");
  }
  std::string config(const std::string& climaster_extra = "") {
    return config_with_tables("  - { name: locmaster, key: [loc_id] }\n  - { name: climaster, key: [client_id]" +
                                  climaster_extra + " }\n",
                              "owner: { column: source, value: D }\n");
  }
};

TEST_F(UndeclaredForeignKey, ViolatingRowsAreRefusedBeforeAnyWriteNamingTheReferenceThatHandlesThem) {
  std::string before = versions("locmaster") + versions("climaster");
  std::string cfg = config();
  try {
    sync(cfg);
    FAIL() << "expected DataRefused";
  } catch (const apply::DataRefused& e) {
    // 1 (parent staged), 3 (NULL) and 5 (mobile parent, kept) pass; 2 has no parent, and 7 is
    // deleted by this very run (owned, vanished from the source).
    std::string m = e.what();
    EXPECT_NE(m.find("table climaster: target foreign key climaster_loc_id_fkey (loc_id) -> public.locmaster"),
              std::string::npos) << m;
    EXPECT_NE(m.find("2 source row(s) would violate it"), std::string::npos) << m;
    EXPECT_NE(m.find("key {\"client_id\" : 2}: (loc_id) = (2) has no row in public.locmaster"), std::string::npos) << m;
    EXPECT_NE(m.find("key {\"client_id\" : 4}: (loc_id) = (7)"), std::string::npos) << m;
    EXPECT_EQ(m.find("client_id\" : 5}"), std::string::npos) << m;
    EXPECT_NE(m.find("add to climaster: references: [{ columns: [loc_id], parent: locmaster, on_orphan: skip }]"),
              std::string::npos) << m;
  }
  EXPECT_EQ(versions("locmaster") + versions("climaster"), before) << "nothing may be written";
  // The command line: the data refusal's exit code, for sync and for plan alike.
  CliResult s = cli({"sync", "--config", cfg});
  EXPECT_EQ(s.exit_code, 5) << s.out << s.err;
  EXPECT_NE((s.out + s.err).find("climaster_loc_id_fkey"), std::string::npos) << s.out << s.err;
  CliResult p = cli({"plan", "--config", cfg});
  EXPECT_EQ(p.exit_code, 5) << p.out << p.err;
  EXPECT_NE((p.out + p.err).find("parent: locmaster, on_orphan: skip"), std::string::npos) << p.out << p.err;
  EXPECT_EQ(versions("locmaster") + versions("climaster"), before);
  // `check` names it as a fact, not a problem.
  CliResult c = cli({"check", "--config", cfg});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_NE((c.out + c.err).find("target foreign key climaster_loc_id_fkey (loc_id) -> public.locmaster is not "
                                 "declared in 'references:'"),
            std::string::npos)
      << c.out << c.err;

  // With the suggested entry the same data syncs, the two rows set aside.
  auto r = sync(config(", references: [ { columns: [loc_id], parent: locmaster, on_orphan: skip } ]"));
  EXPECT_EQ(table(r, "climaster").counts.rejected, 2);
  EXPECT_EQ(column("SELECT client_id FROM climaster ORDER BY 1"), (std::vector<std::string>{"1", "3", "5", "100"}));
}

TEST_F(UndeclaredForeignKey, AParentOutsideTheConfigurationIsJudgedByItsTargetRows) {
  std::string before = versions("climaster");
  std::string cfg =
      config_with_tables("  - { name: climaster, key: [client_id] }\n", "owner: { column: source, value: D }\n");
  try {
    sync(cfg);
    FAIL() << "expected DataRefused";
  } catch (const apply::DataRefused& e) {
    // Every existing target row is a parent (7 and 50): 1 and 2 violate.
    std::string m = e.what();
    EXPECT_NE(m.find("2 source row(s) would violate it"), std::string::npos) << m;
    EXPECT_NE(m.find("(loc_id) = (1)"), std::string::npos) << m;
    EXPECT_NE(m.find("add public.locmaster to 'tables'"), std::string::npos) << m;
  }
  EXPECT_EQ(versions("climaster"), before);
  tgt().exec("INSERT INTO locmaster VALUES (1, 'office', 'D'), (2, 'branch', 'D')");
  EXPECT_EQ(table(sync(cfg), "climaster").counts.inserted, 5);
}

TEST_F(Sync, RefusedValuesStopTheRunNamingTableKeyAndColumn) {
  src().exec("CREATE TABLE t (id int, name text, code text);"
             "INSERT INTO t VALUES (1, 'ok', 'A'), (2, NULL, 'B'), (3, 'ok', 'way too long')");
  tgt().exec("CREATE TABLE t (id int PRIMARY KEY, name text NOT NULL, code varchar(4)); INSERT INTO t VALUES (9, 'keep', 'k')");
  std::string before = content("t");
  try {
    sync(config_with_tables("  - { name: t, key: [id] }\n"));
    FAIL() << "expected DataRefused";
  } catch (const apply::DataRefused& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("table t"), std::string::npos) << m;
    EXPECT_NE(m.find("{\"id\" : 2}: column name: NULL"), std::string::npos) << m;
    EXPECT_NE(m.find("{\"id\" : 3}: column code: value of 12 characters"), std::string::npos) << m;
  }
  EXPECT_EQ(content("t"), before);
}

TEST_F(Sync, TargetErrorDuringApplyRollsBackEveryTable) {
  src().exec("CREATE TABLE a (id int); INSERT INTO a VALUES (1), (2);"
             "CREATE TABLE b (id int, v int); INSERT INTO b VALUES (1, -5)");
  tgt().exec("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, v int CHECK (v > 0))");
  EXPECT_THROW(sync(config_with_tables("  - { name: a, key: [id] }\n  - { name: b, key: [id] }\n")), pg::Error);
  EXPECT_EQ(count("SELECT count(*) FROM a"), 0) << "table a must roll back with b";
}

TEST_F(Sync, PerTableTransactionsCommitEachTable) {
  src().exec("CREATE TABLE a (id int); INSERT INTO a VALUES (1), (2); CREATE TABLE b (id int); INSERT INTO b VALUES (3)");
  tgt().exec("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)");
  auto s = sync(config_with_tables("  - { name: a, key: [id] }\n  - { name: b, key: [id] }\n"), Strategy::Merge, {}, true);
  EXPECT_EQ(count("SELECT count(*) FROM a") + count("SELECT count(*) FROM b"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.table_runs"), 2);
}

TEST_F(Sync, TablesOptionAcceptsTargetNamesAndTouchesNothingElse) {
  src().exec("CREATE TABLE mbreminder (rem_id int, t text); INSERT INTO mbreminder VALUES (1, 'r');"
             "CREATE TABLE other (id int); INSERT INTO other VALUES (1)");
  tgt().exec("CREATE TABLE reminder (rem_id int PRIMARY KEY, t text); CREATE TABLE other (id int PRIMARY KEY)");
  std::string cfg = config_with_tables("  - { name: mbreminder, target: reminder, key: [rem_id] }\n  - { name: other, key: [id] }\n");
  auto s = sync(cfg, Strategy::Merge, {"reminder"});
  EXPECT_EQ(count("SELECT count(*) FROM reminder"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM other"), 0);
}

TEST_F(Sync, TimestampWithoutTimeZoneIsReadInTheSourceZone) {
  src().exec("ALTER DATABASE " + pg::ident(src_db_.name()) + " SET TimeZone = 'Asia/Kolkata'");
  pg::Connection fresh = src_db_.connect();
  fresh.exec("CREATE TABLE t (id int, at timestamp); INSERT INTO t VALUES (1, '2024-03-01 12:00:00')");
  tgt().exec("CREATE TABLE t (id int PRIMARY KEY, at timestamptz)");
  std::string cfg = config_with_tables("  - { name: t, key: [id] }\n");
  sync(cfg);
  EXPECT_EQ(column("SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM t"),
            (std::vector<std::string>{"2024-03-01 06:30"}));
  // source.timezone overrides the server's setting.
  std::string cfg2 = write_config("source: { url: \"{SOURCE}\", timezone: UTC }\ntarget: { url: \"{TARGET}\" }\n"
                                  "tables:\n  - { name: t, key: [id] }\n");
  sync(cfg2);
  EXPECT_EQ(column("SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM t"),
            (std::vector<std::string>{"2024-03-01 12:00"}));
}

TEST_F(Sync, CompareIgnoreLetsTriggerRewrittenTablesConverge) {
  src().exec("CREATE TABLE t (id int, v text, updated_at timestamp); INSERT INTO t VALUES (1, 'a', '2024-01-01')");
  tgt().exec(
      "CREATE TABLE t (id int PRIMARY KEY, v text, updated_at timestamptz);"
      "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := clock_timestamp(); "
      "RETURN NEW; END $$;"
      "CREATE TRIGGER touch BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();");
  std::string cfg = config_with_tables("  - { name: t, key: [id], compare_ignore: [updated_at] }\n");
  sync(cfg);
  std::string v = versions("t");
  sync(cfg);
  EXPECT_EQ(versions("t"), v);
  src().exec("UPDATE t SET v = 'b'");
  auto s = sync(cfg);
  EXPECT_EQ(table(s, "t").counts.updated, 1);
}

// Issue 11 item 7, decision 0007: the real cloud schema's BEFORE UPDATE
// trigger (`NEW.updated_at = now()`), with no compare_ignore configured. The
// column is not compared (check says so), so after an update an incremental
// and a full run write nothing more and verify matches.
TEST_F(Sync, TriggerSetColumnsAreNotComparedAndRunsConverge) {
  src().exec(
      "CREATE TABLE t (id int, v text, updated_at timestamp);"
      "INSERT INTO t VALUES (1, 'a', '2024-01-01'), (2, 'b', '2024-01-02')");
  tgt().exec(
      "CREATE TABLE t (id int PRIMARY KEY, v text, updated_at timestamptz DEFAULT now());"
      "CREATE FUNCTION update_updated_at_column() RETURNS trigger LANGUAGE plpgsql AS $$\n"
      "BEGIN\n  -- NEW.v := 'not code: a comment';\n  NEW.Updated_At = now();\n  RETURN NEW;\nEND;\n$$;"
      "CREATE TRIGGER update_t_updated_at BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION "
      "update_updated_at_column();");
  std::string cfg = config_with_tables("  - { name: t, key: [id] }\n");
  config::Config loaded = config::load_config(cfg);
  run::CheckReport check = run::run_check(loaded, {});
  EXPECT_TRUE(check.problems.empty());
  EXPECT_TRUE(check.warnings.empty());
  std::string facts;
  for (const auto& f : check.facts) facts += f + "\n";
  EXPECT_NE(facts.find("table t: column updated_at is set by target trigger update_t_updated_at (BEFORE UPDATE, "
                       "function public.update_updated_at_column), so it is not compared (as with compare_ignore: "
                       "[updated_at])"),
            std::string::npos)
      << facts;
  EXPECT_EQ(facts.find("column v "), std::string::npos) << "a comment is not code: " << facts;

  sync(cfg);
  src().exec("UPDATE t SET v = 'changed' WHERE id = 1");
  auto changed = incremental(cfg);
  EXPECT_EQ(table(changed, "t").counts.updated, 1);
  std::string v = versions("t");
  auto again = incremental(cfg);
  EXPECT_EQ(versions("t"), v) << "an incremental run after the update rewrote rows";
  auto full = sync(cfg);
  EXPECT_EQ(versions("t"), v) << "a full run after the update rewrote the trigger-stamped row";
  EXPECT_EQ(table(full, "t").counts.updated, 0);
  EXPECT_EQ(verify(cfg).outcome, "succeeded");
  // The source's value still lands where nothing rewrites it (the insert), and real changes still sync.
  EXPECT_EQ(column("SELECT to_char(updated_at, 'YYYY-MM-DD') FROM t WHERE id = 2"),
            (std::vector<std::string>{"2024-01-02"}));
  src().exec("UPDATE t SET v = 'again' WHERE id = 2");
  EXPECT_EQ(table(sync(cfg), "t").counts.updated, 1);
  EXPECT_EQ(column("SELECT v FROM t ORDER BY id"), (std::vector<std::string>{"changed", "again"}));
}

// What stagesync cannot judge it warns about, naming the fix; it never
// silently stops comparing a column whose value comes from the row itself.
TEST_F(Sync, TriggersThatCannotBeJudgedAreWarnedAbout) {
  src().exec("CREATE TABLE t (id int, v text, w text); INSERT INTO t VALUES (1, 'a', 'x')");
  tgt().exec(
      "CREATE TABLE t (id int PRIMARY KEY, v text, w text);"
      "CREATE FUNCTION norm() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.w = 'x' THEN "
      "NEW.\"v\" := upper(NEW.v); END IF; RETURN NEW; END $$;"
      "CREATE FUNCTION opaque() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "NEW := jsonb_populate_record(NEW, jsonb_build_object('w', 'y')); RETURN NEW; END $$;"
      "CREATE FUNCTION off() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.w := 'z'; RETURN NEW; END $$;"
      "CREATE TRIGGER a_norm BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION norm();"
      "CREATE TRIGGER b_opaque BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION opaque();"
      "CREATE TRIGGER c_off BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION off();"
      "ALTER TABLE t DISABLE TRIGGER c_off;");
  config::Config loaded = config::load_config(config_with_tables("  - { name: t, key: [id] }\n"));
  run::CheckReport check = run::run_check(loaded, {});
  EXPECT_TRUE(check.problems.empty());
  std::string all;
  for (const auto& w : check.warnings) all += w + "\n";
  EXPECT_EQ(check.warnings.size(), 2u) << all;
  EXPECT_NE(all.find("target trigger a_norm (BEFORE INSERT OR UPDATE, function public.norm) sets column v from the "
                     "row's own values"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("add compare_ignore: [v]"), std::string::npos) << all;
  EXPECT_NE(all.find("target trigger b_opaque (BEFORE UPDATE, function public.opaque) is plpgsql, but no"),
            std::string::npos)
      << all;
  EXPECT_EQ(all.find("c_off"), std::string::npos) << "a disabled trigger does not fire: " << all;
  for (const auto& f : check.facts) EXPECT_EQ(f.find("is not compared"), std::string::npos) << f;
}

TEST(TriggerSource, AssignmentsAreReadConservatively) {
  catalog::TableSchema t;
  for (const char* c : {"updated_at", "v", "Mixed"}) {
    catalog::Column col;
    col.name = c;
    t.columns.push_back(col);
  }
  auto names = [&](const std::string& src) {
    std::string out;
    for (const auto& a : plan::plpgsql_assignments(src, t)) out += a.column + (a.row_dependent ? "(row) " : " ");
    return out;
  };
  EXPECT_EQ(names("BEGIN new.UPDATED_AT := now(); RETURN NEW; END"), "updated_at ");
  EXPECT_EQ(names("BEGIN IF NEW.v = OLD.v THEN RETURN NEW; END IF; NEW.\"Mixed\" = 1; RETURN NEW; END"), "Mixed ");
  EXPECT_EQ(names("BEGIN NEW.mixed := 1; NEW.nosuch := 2; RETURN NEW; END"), "");  // unquoted folds; not a column
  EXPECT_EQ(names("BEGIN /* NEW.v := 1; */ PERFORM 'NEW.v := 2;'; NEW.v := lower(NEW.v); RETURN NEW; END"), "v(row) ");
  // A backslash ends a standard string; only E'' strings take escapes.
  EXPECT_EQ(names("BEGIN PERFORM 'C:\\'; NEW.updated_at := now(); PERFORM E'\\'; NEW.v := 1'; END"), "updated_at ");
  EXPECT_EQ(names("BEGIN IF TG_OP = 'UPDATE' THEN NEW.updated_at := timezone('utc', now()); ELSE "
                  "NEW.updated_at := coalesce(NEW.updated_at, now()); END IF; RETURN NEW; END"),
            "updated_at(row) ");
}

TEST_F(Sync, SwapIsRefusedByTargetForeignKeysAndChangesNothing) {
  src().exec("CREATE TABLE parent (id int); INSERT INTO parent VALUES (1)");
  tgt().exec("CREATE TABLE parent (id int PRIMARY KEY, source char(1) NOT NULL DEFAULT 'D');"
             "CREATE TABLE mobile_child (id int PRIMARY KEY, parent_id int REFERENCES parent);"
             "INSERT INTO parent VALUES (1, 'D'); INSERT INTO mobile_child VALUES (1, 1)");
  std::string before = content("parent");
  std::string cfg = config_with_tables("  - { name: parent, key: [id] }\n", "owner: { column: source, value: D }\n");
  try {
    sync(cfg, Strategy::Swap);
    FAIL() << "swap must be refused";
  } catch (const apply::DataRefused& e) {  // source data cannot be applied as configured: exit 5, as merge's refusal
    EXPECT_NE(std::string(e.what()).find("use --strategy merge"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("table parent:"), std::string::npos) << e.what();
  }
  EXPECT_EQ(content("parent"), before);
  EXPECT_NO_THROW(sync(cfg, Strategy::Merge));
}

TEST_F(Sync, MergeNeverLetsADeleteCascadeIntoRowsItDoesNotOwn) {
  src().exec("CREATE TABLE parent (id int); INSERT INTO parent VALUES (1), (2)");
  tgt().exec("CREATE TABLE parent (id int PRIMARY KEY, source char(1) NOT NULL DEFAULT 'D');"
             "CREATE TABLE mobile_note (id int PRIMARY KEY, parent_id int REFERENCES parent ON DELETE CASCADE)");
  std::string cfg = config_with_tables("  - { name: parent, key: [id] }\n", "owner: { column: source, value: D }\n");
  sync(cfg);
  tgt().exec("INSERT INTO mobile_note VALUES (10, 2)");
  src().exec("DELETE FROM parent WHERE id = 2");
  std::string before = content("parent") + content("mobile_note");
  try {
    sync(cfg);
    FAIL() << "the cascade must be refused";
  } catch (const apply::DataRefused& e) {
    EXPECT_NE(std::string(e.what()).find("mobile_note_parent_id_fkey"), std::string::npos) << e.what();
  }
  EXPECT_EQ(content("parent") + content("mobile_note"), before);
  // Once nothing references the vanished row, the delete goes through.
  tgt().exec("DELETE FROM mobile_note");
  EXPECT_EQ(table(sync(cfg), "parent").counts.deleted, 1);
}

TEST_F(Sync, TruncateFirstIsRefusedOnProduction) {
  src().exec("CREATE TABLE t (id int)");
  tgt().exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)");
  std::string cfg = config_with_tables("  - { name: t, key: [id] }\n");
  CliResult r = cli({"sync", "--config", cfg, "--strategy", "truncate-first", "--i-accept-data-loss"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("merge"), std::string::npos) << r.out;
  EXPECT_EQ(count("SELECT count(*) FROM t"), 1);
}

}  // namespace
}  // namespace stagesync::testing
