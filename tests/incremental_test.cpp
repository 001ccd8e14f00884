// Incremental sync against real servers (SPEC 1.1, guarantee 3). Each case is
// built to fail on a naive design: a clock- or max(updated_at)-based
// watermark, a DELETE+INSERT of "changed" rows, a sync that never looks for
// deletions, or one that forgets rows it rejected. Target rows are observed
// through content checksums and row versions, never through the tool's counts alone.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/sync_fixture.h"
#include "support/tcp_proxy.h"

namespace stagesync::testing {
namespace {

const report::TableResult& table(const report::RunSummary& s, const std::string& name) {
  for (const auto& t : s.tables)
    if (t.target == name) return t;
  throw std::runtime_error("no table " + name + " in summary");
}

int64_t writes(const report::TableResult& t) { return t.counts.inserted + t.counts.updated + t.counts.deleted; }

class Incremental : public SyncFixture {
 protected:
  // A desktop table with a `timestamp without time zone` change column, and
  // its cloud copy shared with mobile rows (source = 'M').
  void items_schema(int rows = 2000) {
    src().exec(
        "CREATE TABLE items (id int PRIMARY KEY, name text, qty int, updated_at timestamp);"
        "INSERT INTO items SELECT g, 'item ' || g, g % 17, timestamp '2024-01-01' + g * interval '1 minute' "
        "FROM generate_series(1, " + std::to_string(rows) + ") g;");
    tgt().exec(
        "CREATE TABLE items (id int PRIMARY KEY, name text, qty int, updated_at timestamp, "
        "source char(1) NOT NULL DEFAULT 'D');"
        "INSERT INTO items VALUES (900001, 'mobile', 1, now(), 'M'), (900002, 'mobile 2', 2, now(), 'M');");
  }
  std::string items_config(const std::string& table_extra = "") {
    return config_with_tables("  - { name: items, key: [id]" + table_extra + " }\n",
                              "owner: { column: source, value: D }\n");
  }
  // Parents and children with an `on_orphan: skip` reference; `target_fk`
  // makes the target enforce it. Returns the configuration.
  std::string parent_child_schema(const std::string& parents, const std::string& children, bool target_fk) {
    src().exec("CREATE TABLE parent (id int PRIMARY KEY, name text); CREATE TABLE child (id int PRIMARY KEY, parent_id int, v text);"
               "INSERT INTO parent VALUES " + parents + "; INSERT INTO child VALUES " + children + ";");
    tgt().exec(std::string("CREATE TABLE parent (id int PRIMARY KEY, name text);") +
               "CREATE TABLE child (id int PRIMARY KEY, parent_id int" + (target_fk ? " REFERENCES parent" : "") +
               ", v text);");
    return config_with_tables(
        "  - { name: parent, key: [id] }\n"
        "  - { name: child, key: [id], references: [ { columns: [parent_id], parent: parent, on_orphan: skip } ] }\n");
  }
  // Owned rows of the target against the source: equal when fully synced.
  void expect_synced(const std::string& what) {
    const std::vector<std::string> columns = {"id", "name", "qty", "updated_at"};
    EXPECT_EQ(content_of(tgt(), "items", columns, "t.source = 'D'"), content_of(src(), "items", columns)) << what;
    EXPECT_EQ(count("SELECT count(*) FROM items WHERE source = 'M'"), 2) << what << ": mobile rows must stay";
  }
};

TEST_F(Incremental, FirstRunIsFullThenOnlyChangesAreRead) {
  items_schema();
  std::string cfg = items_config();
  auto first = incremental(cfg);
  EXPECT_EQ(table(first, "items").mode_used, "full");
  EXPECT_NE(table(first, "items").reason.find("no watermark"), std::string::npos) << table(first, "items").reason;
  src().exec("UPDATE items SET qty = qty + 100 WHERE id IN (5, 6); INSERT INTO items VALUES (3001, 'new', 1, NULL)");
  auto second = incremental(cfg);
  const auto& t = table(second, "items");
  EXPECT_EQ(t.mode_requested, "incremental");
  EXPECT_EQ(t.mode_used, "cursor") << t.reason;
  EXPECT_EQ(t.counts.read, 3) << "only the changed rows cross the network";
  EXPECT_EQ(t.source_rows, 2001);
  EXPECT_EQ(t.counts.updated, 2);
  EXPECT_EQ(t.counts.inserted, 1);
  expect_synced("after the second run");
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.table_state WHERE table_name = 'items' AND watermark ? 'xmin'"), 1);
  // status shows the method and the watermark (SPEC 1.6).
  CliResult status = cli({"status", "--config", cfg, "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  std::string xmin = tgt().exec("SELECT watermark ->> 'xmin' FROM stagesync.table_state WHERE table_name = 'items'").text(0, 0);
  nlohmann::json st = nlohmann::json::parse(status.out);
  EXPECT_EQ(st["tables"][0]["watermark"]["source_xmin"], std::stoll(xmin)) << "a number: " << status.out;
  EXPECT_NE(status.out.find("\"last_method\":\"cursor\""), std::string::npos) << status.out;
}

TEST_F(Incremental, AFailedRunLeavesTheWatermarkAndItsChangesAreSyncedLater) {
  items_schema();
  tgt().exec("ALTER TABLE items ADD CONSTRAINT qty_small CHECK (qty < 1000)");
  std::string cfg = items_config();
  incremental(cfg);
  std::string watermark = tgt().exec("SELECT watermark::text FROM stagesync.table_state").text(0, 0);
  // A change the target refuses makes the whole run fail, after it has read
  // the other change: the watermark must not move past either.
  src().exec("UPDATE items SET name = 'changed before the failure' WHERE id = 3; UPDATE items SET qty = 5000 WHERE id = 4");
  CliResult failed = cli({"sync", "--config", cfg, "--mode", "incremental"});
  EXPECT_NE(failed.exit_code, 0) << failed.out;
  EXPECT_EQ(tgt().exec("SELECT watermark::text FROM stagesync.table_state").text(0, 0), watermark);
  EXPECT_EQ(column("SELECT name FROM items WHERE id = 3"), (std::vector<std::string>{"item 3"}));
  src().exec("UPDATE items SET qty = 5 WHERE id = 4");
  auto s = incremental(cfg);
  EXPECT_EQ(table(s, "items").mode_used, "cursor");
  expect_synced("after the failed run");
}

TEST_F(Incremental, ThreeRunsWithNoChangeWriteNothing) {
  items_schema();
  std::string cfg = items_config();
  sync(cfg);  // full first: the incremental runs right after it keep every row
  std::string before = versions("items");
  for (int i = 0; i < 3; ++i) {
    auto s = incremental(cfg);
    const auto& t = table(s, "items");
    EXPECT_EQ(t.mode_used, "cursor") << "run " << i << ": " << t.reason;
    EXPECT_EQ(writes(t), 0) << "run " << i;
    EXPECT_EQ(t.counts.read, 0) << "run " << i;
    EXPECT_EQ(versions("items"), before) << "run " << i << " wrote a row";
  }
  expect_synced("after three no-change runs");
}

// A table the source's statistics say was written since the last run skips
// its counting scan: its key digests count the rows (NULL keys too) in the
// same pass. The count must be the counting scan's, or the next run could
// never prove the table unchanged; a wrong guess (a rolled-back insert moves
// the statistics, not the rows) must write nothing.
TEST_F(Incremental, AWrittenTableIsCountedByItsDigestsAsTheCountingScanWould) {
  src().exec(
      "CREATE TABLE things (id int, v text); INSERT INTO things SELECT g, 'v' || g FROM generate_series(1, 200000) g;"
      "INSERT INTO things VALUES (NULL, 'no key'); ANALYZE things;");  // (only large tables are guessed about)
  tgt().exec("CREATE TABLE things (id int PRIMARY KEY, v text);");
  std::string cfg = config_with_tables("  - { name: things, key: [id] }\n");
  sync(cfg);
  // The statistics reach the shared counters about a second after a write (polled, never assumed).
  auto written = [&] {
    return src()
        .exec(
            "SELECT pg_stat_get_tuples_inserted('things'::regclass) + pg_stat_get_tuples_updated('things'::regclass)"
            " + pg_stat_get_tuples_deleted('things'::regclass)")
        .int64(0, 0);
  };
  auto wait_for_writes = [&](int64_t at_least) {
    for (int i = 0; i < 600 && written() < at_least; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_GE(written(), at_least) << "the source's statistics never showed the writes";
  };
  int64_t before = written();
  src().exec("UPDATE things SET v = 'changed' WHERE id = 3; DELETE FROM things WHERE id = 4;");
  wait_for_writes(before + 2);
  auto changed = incremental(cfg);
  const auto& t = table(changed, "things");
  EXPECT_EQ(t.mode_used, "cursor") << t.reason;
  EXPECT_NE(t.reason.find("counted by its key digests"), std::string::npos) << t.reason;
  EXPECT_EQ(t.counts.updated, 1);
  EXPECT_EQ(t.counts.deleted, 1);
  EXPECT_EQ(t.source_rows, 200000) << "every in-scope row, the NULL key's too";
  EXPECT_EQ(count("SELECT (watermark ->> 'rows')::bigint FROM stagesync.table_state WHERE table_name = 'things'"),
            200000);

  auto quiet = incremental(cfg);
  EXPECT_NE(table(quiet, "things").reason.find("nothing changed"), std::string::npos) << table(quiet, "things").reason;

  std::string versions_before = versions("things");
  before = written();
  src().exec("BEGIN; INSERT INTO things VALUES (1000, 'rolled back'); ROLLBACK;");
  wait_for_writes(before + 1);
  auto guessed = incremental(cfg);
  EXPECT_NE(table(guessed, "things").reason.find("counted by its key digests"), std::string::npos)
      << table(guessed, "things").reason;
  EXPECT_EQ(writes(table(guessed, "things")), 0);
  EXPECT_EQ(versions("things"), versions_before) << "a wrong guess wrote a row";
  auto after = incremental(cfg);
  EXPECT_NE(table(after, "things").reason.find("nothing changed"), std::string::npos) << table(after, "things").reason;
}

TEST_F(Incremental, AnUnchangedTableIsNotReadButASwapOfRowsIsFound) {
  items_schema(3000);
  src().exec("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('x'), ('x'), ('y');");
  tgt().exec("CREATE TABLE notes (body text);");
  std::string cfg = config_with_tables("  - { name: items, key: [id] }\n  - { name: notes, key: none, owner: none }\n",
                                       "owner: { column: source, value: D }\n");
  sync(cfg);
  std::string items = versions("items"), notes = versions("notes");
  auto quiet = incremental(cfg);
  for (const char* name : {"items", "notes"}) {
    EXPECT_NE(table(quiet, name).reason.find("nothing changed"), std::string::npos) << table(quiet, name).reason;
    EXPECT_EQ(table(quiet, name).counts.read, 0) << name;
  }
  EXPECT_EQ(versions("items"), items);
  EXPECT_EQ(versions("notes"), notes);
  // Same row counts as before, different rows: one deleted, one inserted.
  src().exec("DELETE FROM items WHERE id = 100; INSERT INTO items VALUES (9100, 'replacement', 1, NULL);"
             "DELETE FROM notes WHERE body = 'y'; INSERT INTO notes VALUES ('z');");
  auto swapped = incremental(cfg);
  EXPECT_EQ(table(swapped, "items").counts.deleted, 1);
  EXPECT_EQ(table(swapped, "items").counts.inserted, 1);
  EXPECT_EQ(column("SELECT body FROM notes ORDER BY body"), (std::vector<std::string>{"x", "x", "z"}));
  expect_synced("after rows were swapped at equal counts");
}

TEST_F(Incremental, LongTransactionCommittingAfterTheRunIsNotMissed) {
  items_schema();
  std::string cfg = items_config();
  incremental(cfg);
  // A desktop transaction starts, writes rows stamped with its own (old) time,
  // and commits only after the next run has read the source and moved its
  // watermark: a max(updated_at) watermark skips these rows for good.
  pg::Connection desktop = src_db_.connect();
  desktop.exec("BEGIN");
  desktop.exec("UPDATE items SET name = 'edited in a long transaction', updated_at = '2020-01-01' WHERE id = 10");
  desktop.exec("INSERT INTO items VALUES (5000, 'inserted in a long transaction', 1, '2020-01-01')");
  src().exec("UPDATE items SET qty = -1, updated_at = '2030-01-01' WHERE id = 11");  // a later stamp, committed now
  auto during = incremental(cfg);
  EXPECT_EQ(table(during, "items").mode_used, "cursor");
  EXPECT_EQ(count("SELECT qty FROM items WHERE id = 11"), -1);
  desktop.exec("COMMIT");
  auto after = incremental(cfg);
  EXPECT_EQ(table(after, "items").mode_used, "cursor");
  EXPECT_EQ(column("SELECT name FROM items WHERE id IN (10, 5000) ORDER BY id"),
            (std::vector<std::string>{"edited in a long transaction", "inserted in a long transaction"}));
  expect_synced("after the long transaction committed");
}

TEST_F(Incremental, BoundaryNullAndSkewedTimestampsAreAllPickedUp) {
  items_schema();
  std::string cfg = items_config();
  incremental(cfg);
  // Rows stamped exactly at the last maximum, NULL, and ten minutes in the
  // past (a desktop whose clock is slow), all committed after the last run.
  src().exec(
      "INSERT INTO items SELECT 6000 + g, 'boundary', 0, (SELECT max(updated_at) FROM items) FROM generate_series(1, 3) g;"
      "INSERT INTO items VALUES (6100, 'null stamp', 0, NULL);"
      "UPDATE items SET name = 'slow clock', updated_at = localtimestamp - interval '10 minutes' WHERE id = 20;"
      "UPDATE items SET name = 'no stamp change' WHERE id = 21;");
  auto s = incremental(cfg);
  EXPECT_EQ(table(s, "items").counts.inserted, 4);
  EXPECT_EQ(table(s, "items").counts.updated, 2);
  expect_synced("after boundary, NULL and skewed stamps");
}

TEST_F(Incremental, DeletesAtTheSourceAreDeletedWithoutReadingTheTable) {
  items_schema(20000);
  std::string cfg = items_config();
  sync(cfg);
  src().exec("DELETE FROM items WHERE id % 1000 = 7");
  auto s = incremental(cfg);
  const auto& t = table(s, "items");
  EXPECT_EQ(t.mode_used, "cursor");
  EXPECT_EQ(t.counts.deleted, 20);
  EXPECT_EQ(t.counts.read, 0) << "deletions are found by key digests, not by reading rows";
  EXPECT_EQ(t.source_rows, 19980);
  expect_synced("after deletes");
}

TEST_F(Incremental, ConcurrentDesktopWritesDuringRunsAreAllSynced) {
  items_schema();
  std::string cfg = items_config();
  incremental(cfg);
  std::atomic<bool> stop{false};
  std::atomic<int> done{0};
  std::thread writer([&] {
    pg::Connection desktop = src_db_.connect();
    for (int i = 0; !stop; ++i) {
      desktop.exec("BEGIN");
      desktop.exec("INSERT INTO items VALUES ($1, 'written during a run', 0, localtimestamp - interval '1 hour')",
                   std::vector<pg::Param>{std::to_string(10000 + i)});
      desktop.exec("UPDATE items SET qty = qty + 1 WHERE id = $1", std::vector<pg::Param>{std::to_string(1 + i % 2000)});
      if (i % 3 == 0) desktop.exec("DELETE FROM items WHERE id = $1", std::vector<pg::Param>{std::to_string(1000 + i)});
      std::this_thread::sleep_for(std::chrono::milliseconds(i % 7));
      desktop.exec("COMMIT");
      ++done;
    }
  });
  for (int i = 0; i < 5; ++i) incremental(cfg);
  stop = true;
  writer.join();
  auto last = incremental(cfg);  // nothing is being written now: this run must converge
  EXPECT_EQ(table(last, "items").mode_used, "cursor");
  EXPECT_GT(done.load(), 5) << "the writer must have committed during the runs";
  expect_synced("after " + std::to_string(done.load()) + " concurrent desktop transactions");
}

TEST_F(Incremental, RowRejectedForAMissingParentIsSyncedWhenTheParentArrives) {
  std::string cfg = parent_child_schema("(1, 'one')", "(1, 1, 'a'), (2, 2, 'orphan for now')", false);
  auto first = incremental(cfg);
  EXPECT_EQ(table(first, "child").counts.rejected, 1);
  EXPECT_EQ(count("SELECT count(*) FROM child"), 1);
  // Only the parent changes at the source; the child row is as old as before.
  src().exec("INSERT INTO parent VALUES (2, 'two')");
  auto second = incremental(cfg);
  EXPECT_EQ(table(second, "child").mode_used, "cursor");
  EXPECT_EQ(table(second, "child").counts.inserted, 1);
  EXPECT_EQ(column("SELECT v FROM child ORDER BY id"), (std::vector<std::string>{"a", "orphan for now"}));
}

TEST_F(Incremental, ChildrenOfADeletedParentAreJudgedAgainAsInAFullRun) {
  // The target enforces the reference: deleting parent 2 before its children fails.
  std::string cfg = parent_child_schema("(1, 'one'), (2, 'two')", "(1, 1, 'a'), (2, 2, 'b'), (3, 2, 'c')", true);
  sync(cfg);
  incremental(cfg);
  // The desktop deletes a parent but leaves its children behind (no FK there).
  src().exec("DELETE FROM parent WHERE id = 2");
  auto s = incremental(cfg);
  EXPECT_EQ(table(s, "parent").counts.deleted, 1);
  EXPECT_EQ(table(s, "child").counts.deleted, 2) << "orphaned children go, as a full run with on_orphan: skip does";
  EXPECT_EQ(table(s, "child").counts.rejected, 2);
  EXPECT_EQ(column("SELECT id FROM child ORDER BY id"), (std::vector<std::string>{"1"}));
  EXPECT_EQ(column("SELECT id FROM parent ORDER BY id"), (std::vector<std::string>{"1"}));
}

// Under on_orphan: keep (the default) a child's fate does not depend on its
// parent rows: a changed or deleted parent leaves the child table proved
// unchanged (not read, not compared), and the result is a full run's.
TEST_F(Incremental, ChildrenUnderKeepAreNotReadAgainWhenTheirParentChanges) {
  std::string cfg = parent_child_schema("(1, 'one'), (2, 'two')", "(1, 1, 'a'), (2, 2, 'b'), (3, 2, 'c')", false);
  std::string keep = cfg + ".keep.yaml";
  {
    std::ifstream in(cfg);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t at = text.find("on_orphan: skip");
    ASSERT_NE(at, std::string::npos) << text;
    std::ofstream(keep) << text.replace(at, 15, "on_orphan: keep");
  }
  sync(keep);
  incremental(keep);
  src().exec("UPDATE parent SET name = 'uno' WHERE id = 1; DELETE FROM parent WHERE id = 2");
  auto s = incremental(keep);
  EXPECT_EQ(table(s, "parent").counts.deleted, 1);
  EXPECT_EQ(table(s, "parent").counts.updated, 1);
  EXPECT_EQ(table(s, "child").mode_used, "cursor");
  EXPECT_EQ(table(s, "child").counts.read, 0) << table(s, "child").reason;
  EXPECT_EQ(writes(table(s, "child")), 0);
  EXPECT_EQ(column("SELECT id FROM child ORDER BY id"), (std::vector<std::string>{"1", "2", "3"}))
      << "kept orphans stay, as in a full run";
  auto full = sync(keep);
  EXPECT_EQ(writes(table(full, "child")), 0) << "a full run finds nothing to change";
  std::remove(keep.c_str());
}

TEST_F(Incremental, ChildrenOfADeletedParentAreJudgedAgainWhenTheyReferenceAPartOfItsKey) {
  // jobtasks -> jobshead(job_id) while jobshead's key is (job_id, sporg_id):
  // deleting every row of job 2 orphans its tasks; deleting one of job 3's
  // two rows does not.
  src().exec("CREATE TABLE heads (job_id int, sporg_id int, PRIMARY KEY (job_id, sporg_id));"
             "CREATE TABLE tasks (task_id int PRIMARY KEY, job_id int);"
             "INSERT INTO heads VALUES (1, 1), (2, 1), (2, 2), (3, 1), (3, 2);"
             "INSERT INTO tasks VALUES (10, 1), (20, 2), (21, 2), (30, 3);");
  tgt().exec("CREATE TABLE heads (job_id int, sporg_id int, PRIMARY KEY (job_id, sporg_id));"
             "CREATE TABLE tasks (task_id int PRIMARY KEY, job_id int);");
  std::string cfg = config_with_tables(
      "  - { name: heads, key: [job_id, sporg_id] }\n"
      "  - name: tasks\n    key: [task_id]\n"
      "    references: [ { columns: [job_id], parent: heads, parent_columns: [job_id], on_orphan: skip } ]\n");
  sync(cfg);
  incremental(cfg);
  src().exec("DELETE FROM heads WHERE job_id = 2 OR (job_id = 3 AND sporg_id = 2)");
  auto s = incremental(cfg);
  EXPECT_EQ(table(s, "heads").counts.deleted, 3);
  EXPECT_EQ(table(s, "tasks").counts.deleted, 2) << "the tasks of job 2 are orphans now, as a full run finds";
  EXPECT_EQ(column("SELECT task_id FROM tasks ORDER BY 1"), (std::vector<std::string>{"10", "30"}));
  auto full = sync(cfg);
  EXPECT_EQ(writes(table(full, "tasks")), 0) << "a full run agrees";
}

TEST_F(Incremental, ChildrenOfAParentKeyHeldByAMobileRowStayAsInAFullRun) {
  // Jobs 2 and 4 exist at the desktop and, created by the mobile app, on the
  // target: the desktop's rows are set aside (key collisions), their tasks
  // pass (the parent exists on the target). When the desktop deletes or
  // changes such a job, the mobile row stays, and so must the tasks: a full
  // run keeps them.
  src().exec(
      "CREATE TABLE jobs (id int PRIMARY KEY, name text); CREATE TABLE tasks (id int PRIMARY KEY, job_id int, v text);"
      "INSERT INTO jobs VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');"
      "INSERT INTO tasks VALUES (10, 1, 'a'), (20, 2, 'b'), (21, 2, 'c'), (30, 3, 'd'), (40, 4, 'e'), (41, 4, 'f');");
  tgt().exec(
      "CREATE TABLE jobs (id int PRIMARY KEY, name text, source char(1) NOT NULL DEFAULT 'D');"
      "CREATE TABLE tasks (id int PRIMARY KEY, job_id int, v text, source char(1) NOT NULL DEFAULT 'D');"
      "INSERT INTO jobs VALUES (2, 'mobile job', 'M'), (4, 'mobile job 4', 'M');");
  std::string cfg = config_with_tables(
      "  - { name: jobs, key: [id] }\n"
      "  - { name: tasks, key: [id], references: [ { columns: [job_id], parent: jobs, on_orphan: skip } ] }\n",
      "owner: { column: source, value: D }\n");
  sync(cfg);
  incremental(cfg);
  const std::vector<std::string> expected = {"10", "20", "21", "30", "40", "41"};
  ASSERT_EQ(column("SELECT id FROM tasks ORDER BY id"), expected);
  src().exec("DELETE FROM jobs WHERE id = 4; UPDATE jobs SET name = 'three, renamed' WHERE id = 3");
  auto deleted = incremental(cfg);
  EXPECT_EQ(table(deleted, "tasks").counts.deleted, 0);
  EXPECT_EQ(column("SELECT id FROM tasks ORDER BY id"), expected) << "after the desktop deleted job 4";
  src().exec("UPDATE jobs SET name = 'two, renamed' WHERE id = 2");
  auto changed = incremental(cfg);
  EXPECT_EQ(table(changed, "tasks").counts.deleted, 0);
  EXPECT_EQ(column("SELECT id FROM tasks ORDER BY id"), expected) << "after the desktop changed job 2";
  EXPECT_EQ(column("SELECT source FROM jobs WHERE id IN (2, 4) ORDER BY id"), (std::vector<std::string>{"M", "M"}));
  std::string v = versions("tasks");
  auto full = sync(cfg);
  EXPECT_EQ(writes(table(full, "tasks")), 0) << "a full run agrees";
  EXPECT_EQ(versions("tasks"), v);
}

TEST_F(Incremental, GrandchildrenOfADeletedParentAreJudgedAgainAsInAFullRun) {
  // jobs <- tasks <- items, both references `on_orphan: skip`. The desktop
  // deletes job 1 only: task 10 becomes an orphan and goes, and with it item
  // 100, whose row did not change either. Found by the differential test.
  src().exec(
      "CREATE TABLE jobs (id int PRIMARY KEY); CREATE TABLE tasks (id int PRIMARY KEY, job_id int);"
      "CREATE TABLE items (id int PRIMARY KEY, task_id int);"
      "INSERT INTO jobs VALUES (1), (2); INSERT INTO tasks VALUES (10, 1), (20, 2);"
      "INSERT INTO items VALUES (100, 10), (200, 20);");
  tgt().exec(
      "CREATE TABLE jobs (id int PRIMARY KEY); CREATE TABLE tasks (id int PRIMARY KEY, job_id int);"
      "CREATE TABLE items (id int PRIMARY KEY, task_id int);");
  std::string cfg = config_with_tables(
      "  - { name: jobs, key: [id] }\n"
      "  - { name: tasks, key: [id], references: [ { columns: [job_id], parent: jobs, on_orphan: skip } ] }\n"
      "  - { name: items, key: [id], references: [ { columns: [task_id], parent: tasks, on_orphan: skip } ] }\n");
  sync(cfg);
  incremental(cfg);
  src().exec("DELETE FROM jobs WHERE id = 1");
  auto s = incremental(cfg);
  EXPECT_EQ(table(s, "tasks").counts.deleted, 1);
  EXPECT_EQ(table(s, "items").counts.deleted, 1) << "item 100 is an orphan now, as a full run finds";
  EXPECT_EQ(column("SELECT id FROM items ORDER BY id"), (std::vector<std::string>{"200"}));
  std::string v = versions("items");
  auto full = sync(cfg);
  EXPECT_EQ(writes(table(full, "items")), 0) << "a full run agrees";
  EXPECT_EQ(versions("items"), v);
}

TEST_F(Incremental, LookupValuesFollowTheirTableEvenWhenItsRowsAreDeleted) {
  src().exec(
      "CREATE TABLE jobs (job_id int PRIMARY KEY, client_id int);"
      "CREATE TABLE tasks (job_id int, task_id int, note text, PRIMARY KEY (job_id, task_id));"
      "INSERT INTO jobs SELECT g, 100 + g FROM generate_series(1, 50) g;"
      "INSERT INTO tasks SELECT 1 + g % 50, g, 't' FROM generate_series(1, 500) g;");
  tgt().exec("CREATE TABLE tasks (job_id int, task_id int, note text, client_id int, PRIMARY KEY (job_id, task_id));");
  std::string cfg = config_with_tables(
      "  - name: tasks\n    key: [job_id, task_id]\n"
      "    lookups: [ { column: client_id, from: jobs, match: [job_id], take: client_id } ]\n");
  sync(cfg);
  incremental(cfg);
  // The tasks rows do not change; the values they look up do: an update, and
  // a delete (which leaves no row version behind).
  src().exec("UPDATE jobs SET client_id = 999 WHERE job_id = 7; DELETE FROM jobs WHERE job_id = 8;");
  auto s = incremental(cfg);
  const auto& t = table(s, "tasks");
  EXPECT_EQ(t.mode_used, "cursor") << t.reason;
  EXPECT_NE(t.reason.find("lookup"), std::string::npos) << t.reason;
  EXPECT_EQ(t.counts.updated, 20);
  EXPECT_EQ(t.counts.read, 20) << "only the rows whose lookup value changed are read";
  EXPECT_EQ(count("SELECT count(*) FROM tasks WHERE job_id = 7 AND client_id = 999"), 10);
  EXPECT_EQ(count("SELECT count(*) FROM tasks WHERE job_id = 8 AND client_id IS NULL"), 10);
  std::string v = versions("tasks");
  auto again = incremental(cfg);
  EXPECT_EQ(writes(table(again, "tasks")), 0);
  EXPECT_EQ(versions("tasks"), v);
}

TEST_F(Incremental, ALookupsStoredImageReadsOnlyTheRowsOfChangedMatchValues) {
  // Tasks of jobs 1-52; jobs 51 and 52 do not exist yet (their tasks look up NULL).
  src().exec(
      "CREATE TABLE jobs (job_id int PRIMARY KEY, client_id int, other int);"
      "CREATE TABLE tasks (job_id int, task_id int, PRIMARY KEY (job_id, task_id));"
      "INSERT INTO jobs SELECT g, 100 + g, 3 * g FROM generate_series(1, 50) g;"
      "INSERT INTO tasks SELECT 1 + g % 52, g FROM generate_series(1, 520) g;");
  tgt().exec("CREATE TABLE tasks (job_id int, task_id int, client_id int, PRIMARY KEY (job_id, task_id));");
  // The source is reached through a proxy that counts the lookup's digest
  // statements (Buckets::buckets() over LookupImages::pairs()): taken only
  // when the image will be used.
  TcpProxy source(Servers::source().port());
  source.count_sent("SELECT z.h AS h");
  auto config = [&](const std::string& take) {
    return write_config("source: { url: \"postgresql://postgres@127.0.0.1:" + std::to_string(source.port()) + "/" +
                        src_db_.name() +
                        "\" }\ntarget: { url: \"{TARGET}\" }\ntables:\n"
                        "  - name: tasks\n    key: [job_id, task_id]\n"
                        "    lookups: [ { column: client_id, from: jobs, match: [job_id], take: " +
                        take + " } ]\n");
  };
  std::string cfg = config("client_id");
  auto image = [&] {
    return column("SELECT m::text || ':' || h FROM stagesync.lookup_image_rows WHERE table_name = 'tasks' ORDER BY 1");
  };
  sync(cfg);
  incremental(cfg);
  // No image yet: the whole lookup is compared, and becomes the image.
  src().exec("UPDATE jobs SET client_id = 500 WHERE job_id = 1");
  auto first = incremental(cfg);
  EXPECT_NE(table(first, "tasks").reason.find("no stored image of the last run's (none yet)"), std::string::npos)
      << table(first, "tasks").reason;
  EXPECT_EQ(table(first, "tasks").counts.read, 10);
  EXPECT_EQ(image().size(), 50u);
  EXPECT_EQ(source.sent(), 0) << "without a usable image the source digests no lookup";

  // An updated, a deleted (its match value disappears) and an inserted (one
  // appears) lookup row: only their 30 tasks are read.
  src().exec(
      "UPDATE jobs SET client_id = 999 WHERE job_id = 7; DELETE FROM jobs WHERE job_id = 8;"
      "INSERT INTO jobs VALUES (51, 151, 153)");
  auto s = incremental(cfg);
  const auto& t = table(s, "tasks");
  EXPECT_NE(t.reason.find("bucket(s) of its stored image differ"), std::string::npos) << t.reason;
  EXPECT_EQ(t.counts.read, 30) << "exactly the tasks of jobs 7, 8 and 51";
  EXPECT_EQ(source.sent(), 1) << "the image is used: the source digests the lookup";
  EXPECT_EQ(t.counts.updated, 30);
  EXPECT_EQ(count("SELECT count(*) FROM tasks WHERE job_id = 7 AND client_id = 999"), 10);
  EXPECT_EQ(count("SELECT count(*) FROM tasks WHERE job_id = 8 AND client_id IS NULL"), 10);
  EXPECT_EQ(count("SELECT count(*) FROM tasks WHERE job_id = 51 AND client_id = 151"), 10);
  EXPECT_EQ(image().size(), 50u);

  // A run that fails when applying leaves the image as it was: the next run
  // compares with it still (it is of the last successful run) and is right.
  std::vector<std::string> before = image();
  tgt().exec("ALTER TABLE tasks ADD CONSTRAINT not_777 CHECK (client_id IS DISTINCT FROM 777)");
  src().exec("UPDATE jobs SET client_id = 777 WHERE job_id = 9; UPDATE jobs SET client_id = 333 WHERE job_id = 10");
  EXPECT_ANY_THROW(incremental(cfg));
  EXPECT_EQ(image(), before);
  tgt().exec("ALTER TABLE tasks DROP CONSTRAINT not_777");
  src().exec("UPDATE jobs SET client_id = 778 WHERE job_id = 9");
  auto after = incremental(cfg);
  EXPECT_NE(table(after, "tasks").reason.find("stored image differ"), std::string::npos)
      << table(after, "tasks").reason;
  EXPECT_EQ(table(after, "tasks").counts.read, 20);
  EXPECT_EQ(count("SELECT count(*) FROM tasks WHERE job_id = 9 AND client_id = 778"), 10);
  EXPECT_EQ(count("SELECT count(*) FROM tasks WHERE job_id = 10 AND client_id = 333"), 10);

  // Another `take`: the stored image is of another configuration, never
  // used (it would find only job 2's tasks).
  std::string other = config("other");
  src().exec("UPDATE jobs SET other = 0 WHERE job_id = 2");
  source.count_sent("SELECT z.h AS h");
  auto changed = incremental(other);
  EXPECT_NE(table(changed, "tasks").reason.find("of another configuration"), std::string::npos)
      << table(changed, "tasks").reason;
  EXPECT_EQ(source.sent(), 0) << "an image of another configuration is not digested";
  EXPECT_EQ(count("SELECT count(*) FROM tasks WHERE job_id <= 51 AND job_id <> 8 AND client_id IS DISTINCT FROM "
                  "CASE WHEN job_id = 2 THEN 0 ELSE 3 * job_id END"),
            0);
  auto full = sync(other);
  EXPECT_EQ(writes(table(full, "tasks")), 0) << "a full run agrees";
}

TEST_F(Incremental, FingerprintMethodFindsChangesAndDeletesByComparingRows) {
  items_schema(5000);
  std::string cfg = items_config(", incremental: { method: fingerprint }");
  sync(cfg);
  src().exec("UPDATE items SET name = 'changed' WHERE id IN (1, 2500, 4999); DELETE FROM items WHERE id = 77;"
             "INSERT INTO items VALUES (7000, 'new', 0, NULL)");
  auto s = incremental(cfg);
  const auto& t = table(s, "items");
  EXPECT_EQ(t.mode_used, "fingerprint") << t.reason;
  EXPECT_EQ(t.counts.read, 4) << "only changed and new rows are sent";
  EXPECT_EQ(t.counts.updated, 3);
  EXPECT_EQ(t.counts.inserted, 1);
  EXPECT_EQ(t.counts.deleted, 1);
  expect_synced("fingerprints");
  // A target row edited behind the sync's back is repaired by fingerprints.
  tgt().exec("UPDATE items SET qty = 999 WHERE id = 3");
  auto again = incremental(cfg);
  EXPECT_EQ(table(again, "items").counts.updated, 1);
  expect_synced("after a target-side edit");
  std::string v = versions("items");
  EXPECT_EQ(writes(table(incremental(cfg), "items")), 0);
  EXPECT_EQ(versions("items"), v);
}

TEST_F(Incremental, KeylessAndSwapTablesSayWhyTheyRanFull) {
  items_schema(100);
  src().exec("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('x'), ('x'), ('y');");
  tgt().exec("CREATE TABLE notes (body text);");
  std::string cfg = config_with_tables("  - { name: items, key: [id] }\n  - { name: notes, key: none }\n",
                                       "owner: none\n");
  tgt().exec("DELETE FROM items");
  incremental(cfg);
  src().exec("DELETE FROM notes WHERE body = 'y'");
  auto s = incremental(cfg);
  EXPECT_EQ(table(s, "notes").mode_used, "full");
  EXPECT_NE(table(s, "notes").reason.find("key: none"), std::string::npos) << table(s, "notes").reason;
  EXPECT_EQ(count("SELECT count(*) FROM notes"), 2);
  auto swap = sync(cfg, apply::Strategy::Swap, {}, false, "incremental");
  EXPECT_EQ(table(swap, "items").mode_used, "full");
  EXPECT_NE(table(swap, "items").reason.find("swap"), std::string::npos);
}

// Rows a run's sequential scans read from `table` on the target, for the
// server's statistics of the sessions that have ended (each flushes its own
// when it ends: the run's target session is closed when the run returns).
int64_t rows_scanned(pg::Connection& db, const std::string& table) {
  for (int i = 0;; ++i) {
    pg::Result r = db.exec(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = pg_catalog.current_database() "
        "AND pid <> pg_catalog.pg_backend_pid() AND backend_type = 'client backend'");
    if (r.int64(0, 0) == 0) break;
    if (i == 400) throw std::runtime_error("the run's target sessions did not end within 20 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  db.exec("SELECT pg_catalog.pg_stat_clear_snapshot()");
  return db.exec("SELECT coalesce(seq_tup_read, 0) FROM pg_catalog.pg_stat_user_tables WHERE relname = '" + table +
                 "'")
      .int64(0, 0);
}

// A table read whole (a keyless one) plans its own statements as whole-table
// joins, not the other tables' (run::Session::planner_regime()): the few
// changed rows of a large keyed table in the same run are judged and applied
// by index lookups, not by hashing the whole target table several times.
TEST_F(Incremental, ATableReadWholeLeavesTheFewChangedRowsOfAnotherToIndexLookups) {
  const int rows = 50000;
  items_schema(rows);
  src().exec("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('x'), ('y');");
  tgt().exec("CREATE TABLE notes (body text); DELETE FROM items;");
  std::string cfg = config_with_tables("  - { name: items, key: [id] }\n  - { name: notes, key: none }\n",
                                       "owner: none\n");
  incremental(cfg);
  tgt().exec("VACUUM ANALYZE items");
  src().exec("UPDATE items SET qty = qty + 1 WHERE id IN (10, 20, 30); INSERT INTO items VALUES (60001, 'new', 1, NULL);"
             "INSERT INTO notes VALUES ('z')");
  int64_t before = rows_scanned(tgt(), "items");
  auto s = incremental(cfg);
  int64_t scanned = rows_scanned(tgt(), "items") - before;
  EXPECT_EQ(table(s, "notes").mode_used, "full");
  EXPECT_EQ(table(s, "items").mode_used, "cursor") << table(s, "items").reason;
  EXPECT_EQ(table(s, "items").counts.updated, 3);
  EXPECT_EQ(table(s, "items").counts.inserted, 1);
  // The key digest of the cursor method reads the table once; each statement
  // hashing it would read it whole again (3 times as many rows with the
  // whole-table regime for every table of the run).
  EXPECT_LE(scanned, rows + 1) << "the target table was scanned whole by more than the key digest";
  const std::vector<std::string> columns = {"id", "name", "qty", "updated_at"};
  EXPECT_EQ(content_of(tgt(), "items", columns), content_of(src(), "items", columns));
}

TEST_F(Incremental, AWatermarkFromAnotherSourceOrTheFutureIsNotTrusted) {
  items_schema(300);
  std::string cfg = items_config();
  incremental(cfg);
  // As if the source had been restored into a fresh cluster: its transaction
  // counter is now behind the recorded watermark.
  tgt().exec("UPDATE stagesync.table_state SET watermark = jsonb_set(jsonb_set(watermark, '{xmin}', '99999999999'), "
             "'{xmax}', '99999999999')");
  src().exec("UPDATE items SET name = 'after restore' WHERE id = 1");
  auto s = incremental(cfg);
  EXPECT_EQ(table(s, "items").mode_used, "full");
  EXPECT_NE(table(s, "items").reason.find("behind"), std::string::npos) << table(s, "items").reason;
  expect_synced("after an untrusted watermark");
}

TEST_F(Incremental, AnEmptiedSourceTableStillTripsTheMassDeleteGuard) {
  items_schema(500);
  std::string cfg = items_config();
  sync(cfg);
  std::string before = content("items");
  src().exec("DELETE FROM items");
  CliResult r = cli({"sync", "--config", cfg, "--mode", "incremental"});
  EXPECT_EQ(r.exit_code, 9) << r.out << r.err;
  EXPECT_EQ(content("items"), before) << "nothing may change when the guard trips";
}

TEST_F(Incremental, PlanPredictsWhatTheIncrementalRunDoes) {
  items_schema(3000);
  std::string cfg = items_config();
  sync(cfg);
  src().exec("UPDATE items SET qty = 0 WHERE id <= 40; DELETE FROM items WHERE id BETWEEN 100 AND 104;"
             "INSERT INTO items SELECT g, 'n', 1, NULL FROM generate_series(8000, 8006) g");
  CliResult plan = cli({"plan", "--config", cfg, "--mode", "incremental", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  auto s = incremental(cfg);
  const auto& t = table(s, "items");
  EXPECT_EQ(t.counts.inserted, 7);
  EXPECT_EQ(t.counts.deleted, 5);
  EXPECT_NE(plan.out.find("\"inserted\":7"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("\"deleted\":5"), std::string::npos) << plan.out;
  EXPECT_NE(plan.out.find("\"updated\":" + std::to_string(t.counts.updated)), std::string::npos) << plan.out;
  // The run does not count the rows it does not own (a whole-table count); the plan must not either.
  EXPECT_NE(plan.out.find("\"foreign_rows_preserved\":" + std::to_string(t.counts.preserved)), std::string::npos)
      << plan.out;
  expect_synced("after plan and sync");
}

TEST_F(Incremental, TextAndDateKeysFindDeletesAndReplacementsLikeIntegerKeys) {
  // Keys that are not integers are hashed as text: the digests must still
  // find a deletion, a delete+insert that keeps the row count, and a key
  // changed in place (old key gone, new key in the window).
  src().exec("CREATE TABLE visits (client text, day date, note text, PRIMARY KEY (client, day));"
             "INSERT INTO visits SELECT 'client ' || (g % 97), date '2024-01-01' + g / 97, 'visit ' || g "
             "FROM generate_series(1, 5000) g;");
  tgt().exec("CREATE TABLE visits (client text, day date, note text, source char(1) NOT NULL DEFAULT 'D', "
             "PRIMARY KEY (client, day));"
             "INSERT INTO visits VALUES ('mobile', date '2030-01-01', 'from the app', 'M');");
  std::string cfg = config_with_tables("  - { name: visits, key: [client, day] }\n", "owner: { column: source, value: D }\n");
  sync(cfg);
  src().exec("DELETE FROM visits WHERE note IN ('visit 10', 'visit 2000', 'visit 4999');"
             "INSERT INTO visits VALUES ('zoë', date '2024-06-01', 'new');"
             "UPDATE visits SET day = date '2025-01-01' WHERE note = 'visit 3000';");
  auto s = incremental(cfg);
  const auto& t = table(s, "visits");
  EXPECT_EQ(t.mode_used, "cursor");
  EXPECT_EQ(t.counts.deleted, 4) << "three deleted rows and the old key of the changed one";
  EXPECT_EQ(t.counts.inserted, 2);
  EXPECT_EQ(t.counts.read, 2) << "only the window's rows are read";
  const std::vector<std::string> columns = {"client", "day", "note"};
  EXPECT_EQ(content_of(tgt(), "visits", columns, "t.source = 'D'"), content_of(src(), "visits", columns));
  EXPECT_EQ(count("SELECT count(*) FROM visits WHERE source = 'M'"), 1);
}

TEST_F(Incremental, ARowRemovedBehindTheSyncIsFetchedEvenWhenTheSourceKeyHasAnotherType) {
  // The desktop keeps ids as integers, the cloud as text: rows are fetched by
  // their staged (text) key, never by comparing integers with text.
  src().exec("CREATE TABLE items (id int PRIMARY KEY, name text);"
             "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 3000) g;");
  tgt().exec("CREATE TABLE items (id text PRIMARY KEY, name text);");
  std::string cfg = config_with_tables("  - { name: items, key: [id] }\n");
  sync(cfg);
  tgt().exec("DELETE FROM items WHERE id IN ('17', '2500')");  // someone else's doing
  src().exec("UPDATE items SET name = 'changed' WHERE id = 3");
  auto s = incremental(cfg);
  const auto& t = table(s, "items");
  EXPECT_EQ(t.mode_used, "cursor");
  EXPECT_EQ(t.counts.inserted, 2) << "the two missing rows are read again by key";
  EXPECT_EQ(t.counts.updated, 1);
  EXPECT_EQ(count("SELECT count(*) FROM items"), 3000);
  EXPECT_EQ(column("SELECT name FROM items WHERE id IN ('3', '17', '2500') ORDER BY id::int"),
            (std::vector<std::string>{"changed", "item 17", "item 2500"}));
}

TEST_F(Incremental, KeepNewestFollowsNewerAndDeletedDuplicates) {
  // Duplicate keys at the source, the newest row kept: a newer duplicate
  // replaces the synced row, and when the newest row of a key is deleted the
  // next newest takes its place (a deletion leaves no row version behind).
  src().exec("CREATE TABLE jobs (job_id int, sporg int, v text, updated_at timestamp);"
             "INSERT INTO jobs VALUES (1, 1, 'old', '2024-01-01'), (1, 1, 'new', '2024-02-01'), "
             "(2, 1, 'only', '2024-01-01');"
             "INSERT INTO jobs SELECT 100 + g, 1, 'filler', '2024-01-01' FROM generate_series(1, 500) g;");
  tgt().exec("CREATE TABLE jobs (job_id int, sporg int, v text, updated_at timestamp, PRIMARY KEY (job_id, sporg));");
  std::string cfg = config_with_tables(
      "  - { name: jobs, key: [job_id, sporg], duplicates: { keep: newest, by: updated_at } }\n");
  sync(cfg);
  auto v = [&] { return column("SELECT job_id || ':' || v FROM jobs WHERE job_id < 100 ORDER BY job_id"); };
  EXPECT_EQ(v(), (std::vector<std::string>{"1:new", "2:only"}));
  src().exec("INSERT INTO jobs VALUES (2, 1, 'newer', '2024-03-01')");
  auto first = incremental(cfg);
  EXPECT_EQ(table(first, "jobs").mode_used, "cursor") << table(first, "jobs").reason;
  EXPECT_EQ(table(first, "jobs").counts.read, 2) << "every row of the changed key";
  EXPECT_EQ(v(), (std::vector<std::string>{"1:new", "2:newer"}));
  src().exec("DELETE FROM jobs WHERE v = 'new'");
  auto second = incremental(cfg);
  EXPECT_EQ(table(second, "jobs").mode_used, "cursor");
  EXPECT_EQ(table(second, "jobs").counts.read, 1) << "the key whose greatest updated_at dropped is read again";
  EXPECT_EQ(v(), (std::vector<std::string>{"1:old", "2:newer"})) << "the remaining duplicate is the newest now";
  auto full = sync(cfg);
  EXPECT_EQ(writes(table(full, "jobs")), 0) << "a full run agrees";
}

TEST_F(Incremental, KeepNewestCursorReadsEveryRowOfAChangedKeyAndIgnoresOlderDeletions) {
  // The cursor with (key, greatest `by`) digests: a change to an older row
  // reads all rows of its key (else the older row alone would replace the
  // kept one); deleting an older row changes nothing; an older row made
  // newest replaces the kept one; deleting it brings back the next newest.
  src().exec(
      "CREATE TABLE jobs (job_id int, sporg int, v text, updated_at timestamptz);"
      "INSERT INTO jobs VALUES (1, 1, 'a', '2024-01-01'), (1, 1, 'b', '2024-02-01'), (1, 1, 'c', '2024-03-01'),"
      " (2, 1, 'x', '2024-01-01'), (2, 1, 'y', '2024-02-01');"
      "INSERT INTO jobs SELECT 100 + g, 1, 'filler', '2024-01-01' FROM generate_series(1, 500) g;");
  tgt().exec("CREATE TABLE jobs (job_id int, sporg int, v text, updated_at timestamptz, PRIMARY KEY (job_id, sporg));");
  std::string cfg =
      config_with_tables("  - { name: jobs, key: [job_id, sporg], duplicates: { keep: newest, by: updated_at } }\n");
  sync(cfg);
  auto v = [&] { return column("SELECT job_id || ':' || v FROM jobs WHERE job_id < 100 ORDER BY job_id"); };
  ASSERT_EQ(v(), (std::vector<std::string>{"1:c", "2:y"}));

  src().exec("UPDATE jobs SET v = 'a2' WHERE v = 'a'");
  auto older_changed = incremental(cfg);
  const auto& t1 = table(older_changed, "jobs");
  EXPECT_EQ(t1.mode_used, "cursor") << t1.reason;
  EXPECT_EQ(t1.counts.read, 3) << "every row of the changed key";
  EXPECT_EQ(writes(t1), 0) << "the kept row is still the newest";
  EXPECT_EQ(v(), (std::vector<std::string>{"1:c", "2:y"}));

  src().exec("DELETE FROM jobs WHERE v = 'x'");
  auto older_deleted = incremental(cfg);
  const auto& t2 = table(older_deleted, "jobs");
  EXPECT_EQ(t2.mode_used, "cursor");
  EXPECT_EQ(t2.counts.read, 0) << "the key's greatest updated_at is unchanged: nothing to read";
  EXPECT_EQ(writes(t2), 0);
  EXPECT_EQ(t2.source_rows, 504);

  src().exec("UPDATE jobs SET updated_at = '2024-04-01' WHERE v = 'a2'");
  auto made_newest = incremental(cfg);
  EXPECT_EQ(table(made_newest, "jobs").counts.updated, 1);
  EXPECT_EQ(v(), (std::vector<std::string>{"1:a2", "2:y"}));

  src().exec("DELETE FROM jobs WHERE v = 'a2'");
  auto newest_deleted = incremental(cfg);
  EXPECT_EQ(table(newest_deleted, "jobs").mode_used, "cursor");
  EXPECT_EQ(table(newest_deleted, "jobs").counts.updated, 1);
  EXPECT_EQ(v(), (std::vector<std::string>{"1:c", "2:y"}));
  EXPECT_EQ(writes(table(sync(cfg), "jobs")), 0) << "a full run agrees";
}

TEST_F(Incremental, KeepNewestKeyChangedInTheWindowIsUpdatedNotDeletedAndReinserted) {
  // Differential seed 1104, round 141. The digests hash (key, `by`): a key
  // set aside as a collision counts with a NULL `by` on the target side, so
  // its buckets always differ. A key whose `by` changed in the window keeps
  // its old (key, `by`) on the target: when that lands in such a bucket and
  // the new one does not, the source's pairs lack the key, and it was listed
  // as a deletion although the source holds it (the run deleted and inserted
  // it, its plan predicted the delete and an update).
  src().exec(
      "CREATE TABLE visits (visit_id int, at int, note text);"
      "INSERT INTO visits VALUES (4, 628, 'taken'), (4, 100, 'older');"
      "INSERT INTO visits SELECT 100 + g, g, 'filler' FROM generate_series(1, 500) g;");
  tgt().exec(
      "CREATE TABLE visits (visit_id int PRIMARY KEY, at int, note text, source char(1) NOT NULL DEFAULT 'D');"
      "INSERT INTO visits VALUES (4, 1, 'mobile', 'M');");
  // The digests' bucket of a (key, at) text, as reconcile.cpp's TableHash
  // (not integers only: hashed as the row's text) with 64 buckets (a small table).
  auto bucket = [](const std::string& row) { return "((pg_catalog.hashtextextended('" + row + "', 0) >> 40) & 63)"; };
  std::string set_aside = bucket("(4,)") + ", " + bucket("(4,628)");
  // Key 1's `at`: first in one of those buckets, then in none of them.
  auto first_at = [&](const std::string& in) {
    std::string where = bucket("(1,' || a || ')") + " " + in + " (" + set_aside + ")";
    return tgt().exec("SELECT min(a) FROM generate_series(1, 1000) a WHERE " + where).text(0, 0);
  };
  std::string before = first_at("IN"), after = first_at("NOT IN");
  ASSERT_FALSE(before.empty() || after.empty());
  src().exec("INSERT INTO visits VALUES (1, " + before + ", 'kept')");
  std::string cfg = config_with_tables("  - { name: visits, key: [visit_id], duplicates: { keep: newest, by: at } }\n",
                                       "owner: { column: source, value: D }\n");
  ASSERT_EQ(table(sync(cfg), "visits").counts.collisions, 1);

  src().exec("UPDATE visits SET at = " + after + " WHERE visit_id = 1");
  CliResult plan = cli({"plan", "--config", cfg, "--mode", "incremental", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  auto s = incremental(cfg);
  const auto& t = table(s, "visits");
  EXPECT_EQ(t.mode_used, "cursor") << t.reason;
  EXPECT_EQ(t.counts.updated, 1);
  EXPECT_EQ(t.counts.inserted, 0);
  EXPECT_EQ(t.counts.deleted, 0) << "the source still holds key 1";
  EXPECT_EQ(column("SELECT at || ' ' || note FROM visits WHERE visit_id = 1"),
            (std::vector<std::string>{after + " kept"}));
  nlohmann::json planned;
  std::stringstream lines(plan.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.front() == '{') planned = nlohmann::json::parse(line);
  int found = 0;
  for (const auto& p : planned["tables"]) {
    if (p["target"] != "visits") continue;
    ++found;
    EXPECT_EQ(p["counts"]["inserted"], t.counts.inserted) << plan.out;
    EXPECT_EQ(p["counts"]["updated"], t.counts.updated) << plan.out;
    EXPECT_EQ(p["counts"]["deleted"], t.counts.deleted) << plan.out;
  }
  EXPECT_EQ(found, 1) << plan.out;
  EXPECT_EQ(writes(table(sync(cfg), "visits")), 0) << "a full run agrees";
}

TEST_F(Incremental, KeepNewestTiesUseFingerprintsUntilNoneRemain) {
  // Rows of one key with equal `by` values (equal, both NULL, or equal once
  // rounded to the target's timestamp(0)): the full run keeps one of them by
  // the row's text, and deleting it leaves the key's greatest `by` as it was.
  // While the last run saw such a tie the table uses fingerprints; after a
  // run that saw none, the cursor again.
  src().exec(
      "CREATE TABLE jobs (job_id int, v text, updated_at timestamp);"
      "INSERT INTO jobs VALUES (1, 'a', '2024-01-01'), (1, 'b', '2024-01-01'), (2, 'x', NULL), (2, 'y', NULL),"
      " (3, 'p', '2024-01-01 10:00:00.2'), (3, 'q', '2024-01-01 10:00:00.4');"
      "INSERT INTO jobs SELECT 100 + g, 'filler', '2024-01-01' FROM generate_series(1, 500) g;");
  tgt().exec("CREATE TABLE jobs (job_id int PRIMARY KEY, v text, updated_at timestamp(0));");
  std::string cfg =
      config_with_tables("  - { name: jobs, key: [job_id], duplicates: { keep: newest, by: updated_at } }\n");
  sync(cfg);
  auto v = [&] { return column("SELECT job_id || ':' || v FROM jobs WHERE job_id < 100 ORDER BY job_id"); };
  ASSERT_EQ(v(), (std::vector<std::string>{"1:b", "2:y", "3:q"}));

  src().exec("DELETE FROM jobs WHERE v IN ('b', 'y')");
  auto equal = incremental(cfg);
  EXPECT_EQ(table(equal, "jobs").mode_used, "fingerprint");
  EXPECT_NE(table(equal, "jobs").reason.find("equal updated_at"), std::string::npos) << table(equal, "jobs").reason;
  EXPECT_EQ(v(), (std::vector<std::string>{"1:a", "2:x", "3:q"}));

  src().exec("DELETE FROM jobs WHERE v = 'q'");
  auto rounded = incremental(cfg);
  EXPECT_EQ(table(rounded, "jobs").mode_used, "fingerprint") << "p and q were equal as the target stores them";
  EXPECT_EQ(v(), (std::vector<std::string>{"1:a", "2:x", "3:p"}));

  src().exec("INSERT INTO jobs VALUES (4, 'new', '2024-05-01')");
  auto none = incremental(cfg);
  EXPECT_EQ(table(none, "jobs").mode_used, "cursor") << table(none, "jobs").reason;
  EXPECT_EQ(table(none, "jobs").counts.inserted, 1);
  EXPECT_EQ(writes(table(sync(cfg), "jobs")), 0) << "a full run agrees";
}

TEST_F(Incremental, SetAsideRowsStayRecordedUntilDeletedAtTheSource) {
  std::string cfg = parent_child_schema("(1, 'one')", "(1, 1, 'a'), (2, 7, 'orphan'), (3, 8, 'orphan too'), (4, 1, 'b')",
                                        false);
  sync(cfg);
  auto current = [&] {
    return column(
        "SELECT row_key || ' ' || column_name || ': ' || reason || ' ' || run_id FROM stagesync.set_aside "
        "WHERE table_name = 'child' ORDER BY row_key");
  };
  std::vector<std::string> first = current();
  ASSERT_EQ(first.size(), 2u);
  // Another change in the child table: the orphans are not read again but stay set aside.
  src().exec("UPDATE child SET v = 'a2' WHERE id = 1");
  auto second = incremental(cfg);
  EXPECT_EQ(table(second, "child").counts.read, 1);
  EXPECT_EQ(table(second, "child").counts.rejected, 2) << "still set aside, as a full run counts them";
  EXPECT_EQ(current(), first) << "kept as first recorded, by the run that set them aside";
  // Run ids sort by second only: runs are ordered by their start.
  std::string run2 = tgt().exec("SELECT run_id FROM stagesync.runs ORDER BY started_at DESC LIMIT 1").text(0, 0);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.rejects WHERE run_id = '" + run2 + "'"), 0)
      << "a run records only the rows it judged";
  // One orphan is deleted at the desktop (plus one more row, so the table changed).
  src().exec("DELETE FROM child WHERE id IN (3, 4)");
  auto third = incremental(cfg);
  EXPECT_EQ(table(third, "child").counts.deleted, 1);
  EXPECT_EQ(table(third, "child").counts.rejected, 1);
  EXPECT_EQ(column("SELECT row_key FROM stagesync.set_aside WHERE table_name = 'child'"),
            (std::vector<std::string>{"{\"id\" : 2}"}));
  EXPECT_EQ(column("SELECT v FROM child ORDER BY id"), (std::vector<std::string>{"a2"}));
}

// Decision 0016: a set-aside row is written once and stays where it is while
// it stays set aside; runs that do not change it write nothing for it (its
// row version stays), a failed run leaves the set as it was, and a row that
// passes (its parent arrived) leaves the set and is synced.
TEST_F(Incremental, SetAsideRowsAreWrittenOnceAndLeaveTheSetWhenTheyPass) {
  std::string cfg =
      parent_child_schema("(1, 'one')", "(1, 1, 'a'), (2, 7, 'orphan'), (3, 8, 'orphan too'), (4, 1, 'b')", false);
  tgt().exec("ALTER TABLE child ADD CONSTRAINT v_short CHECK (length(v) < 20)");
  sync(cfg);
  auto set = [&] {
    return column(
        "SELECT row_key || ' ' || xmin::text || ' ' || ctid::text FROM stagesync.set_aside "
        "WHERE table_name = 'child' ORDER BY row_key");
  };
  std::vector<std::string> before = set();
  ASSERT_EQ(before.size(), 2u);
  int64_t recorded = count("SELECT count(*) FROM stagesync.rejects");
  for (int i = 0; i < 3; ++i) {
    src().exec("UPDATE child SET v = 'a" + std::to_string(i) + "' WHERE id = 1");
    auto s = incremental(cfg);
    EXPECT_EQ(table(s, "child").mode_used, "cursor") << "run " << i;
    EXPECT_EQ(table(s, "child").counts.rejected, 2) << "run " << i;
    EXPECT_EQ(set(), before) << "run " << i << ": not rewritten";
  }
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.rejects"), recorded)
      << "nothing newly set aside: nothing recorded for the rows that stay set aside";
  // Parent 7 arrives, in a run the target refuses (another row breaks a
  // CHECK): the run fails and the set is as it was.
  src().exec("INSERT INTO parent VALUES (7, 'seven'); UPDATE child SET v = repeat('x', 30) WHERE id = 4");
  CliResult failed = cli({"sync", "--config", cfg, "--mode", "incremental"});
  EXPECT_NE(failed.exit_code, 0) << failed.out;
  EXPECT_EQ(set(), before) << "a failed run changes nothing";
  src().exec("UPDATE child SET v = 'b' WHERE id = 4");
  auto passed = incremental(cfg);
  EXPECT_EQ(table(passed, "child").counts.inserted, 1);
  EXPECT_EQ(table(passed, "child").counts.rejected, 1);
  EXPECT_EQ(set(), (std::vector<std::string>{before[1]}))
      << "the orphan whose parent arrived left the set; the other stays";
  EXPECT_EQ(column("SELECT v FROM child ORDER BY id"), (std::vector<std::string>{"a2", "orphan", "b"}));
  auto full = sync(cfg);
  EXPECT_EQ(writes(table(full, "child")), 0) << "a full run agrees";
  EXPECT_EQ(table(full, "child").counts.rejected, 1);
}

}  // namespace
}  // namespace stagesync::testing
