// Logical capture (issue 16, decision 0011), the layer below `follow`,
// against a real server started with wal_level = logical: the replication
// connection, the test_decoding decoder, the spool, the exported snapshot,
// confirmation, lost slots, readiness, and the evidence for the decision
// (what a publication does to the desktop application, what the WAL carries
// for tables without a primary key, what REPLICA IDENTITY FULL costs).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "logical/exported_snapshot.h"
#include "logical/readiness.h"
#include "logical/replica_identity.h"
#include "logical/replication_connection.h"
#include "logical/slot_errors.h"
#include "logical/test_decoding.h"
#include "logical/transaction_reader.h"
#include "support/servers.h"
#include "support/tcp_proxy.h"

namespace stagesync::testing {
namespace {

using namespace std::chrono_literals;
using logical::Change;
using logical::ChangeKind;
using logical::Lsn;
using logical::ReplicationConnection;
using logical::Transaction;
using logical::TransactionReader;

// A server of its own with wal_level = logical (a restart after ALTER
// SYSTEM: wal_level is read only at start); the shared source server keeps
// the default (replica) and plays the desktop that is not ready.
cluster::LocalCluster& logical_server() { return Servers::logical(); }

// A server setting changed for one test (ALTER SYSTEM and a reload), put
// back however the test ends.
class ServerSetting {
 public:
  ServerSetting(const std::string& name, const std::string& value) : name_(name) {
    auto conn = admin(logical_server());
    conn.exec("ALTER SYSTEM SET " + name + " = " + conn.literal(value));
    conn.exec("SELECT pg_reload_conf()");
  }
  ~ServerSetting() {
    try {
      auto conn = admin(logical_server());
      conn.exec("ALTER SYSTEM RESET " + name_);
      conn.exec("SELECT pg_reload_conf()");
    } catch (...) {  // best effort: the next test's expectations would show it
    }
  }
  ServerSetting(const ServerSetting&) = delete;
  ServerSetting& operator=(const ServerSetting&) = delete;

 private:
  std::string name_;
};

std::vector<Change> changes_of(const Transaction& t) {
  std::vector<Change> out;
  auto reader = t.changes.reader();
  Change c;
  while (reader.next(c)) out.push_back(c);
  return out;
}

std::optional<std::string> value(const Change& c, const std::string& column, bool old = false) {
  const logical::ColumnValue* v = c.find(column, old);
  if (!v) return "(absent)";
  return v->value;
}

class LogicalTest : public ::testing::Test {
 protected:
  LogicalTest() : db_(logical_server(), "logical"), conn_(db_.connect()) {}

  void TearDown() override {
    // A database with a slot cannot be dropped: drop this test's slots (the
    // streams are closed by now: they live in the test bodies).
    // A walsender may still hold its slot for a moment after the client left.
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (conn_.exec("SELECT count(*) FROM pg_replication_slots WHERE database = current_database() AND active")
                   .int64(0, 0) > 0 &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    conn_.exec(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE database = current_database() AND NOT active");
    EXPECT_EQ(conn_.exec("SELECT count(*) FROM pg_replication_slots WHERE database = current_database()").int64(0, 0),
              0)
        << "a slot of this test is still there";
  }

  pg::Endpoint endpoint() const { return pg::Endpoint{db_.server().conninfo(db_.name()), "", "stagesync-test", 10}; }

  // Waits (at most 30 s) until no stream holds `slot`. The server's end of a
  // stream that just ended (closed, or cut: its walsender) holds the slot
  // until it notices; a start before then is refused ("replication slot ...
  // is active", SQLSTATE 55006), which `follow` waits out (start_stream()).
  void wait_released(const std::string& slot) {
    for (int i = 0; logical::slot_status(conn_, slot).active; ++i) {
      if (i == 1500) throw std::runtime_error("replication slot " + slot + " still held after 30 s");
      std::this_thread::sleep_for(20ms);
    }
  }

  // A started stream on `slot` (from its confirmed position), once no earlier stream holds it.
  std::unique_ptr<ReplicationConnection> stream(const std::string& slot, Lsn from = {}) {
    wait_released(slot);
    auto r = std::make_unique<ReplicationConnection>(endpoint());
    r->start(slot, from, logical::test_decoding_options());
    return r;
  }

  std::string create_slot(const std::string& name) {
    ReplicationConnection r(endpoint());
    r.create_slot(name, logical::kPlugin, /*export_snapshot=*/false);
    return name;
  }

  // Reads until `n` transactions arrived (at most 60 s: a hang fails, it
  // does not block the suite).
  static std::vector<Transaction> read(TransactionReader& reader, size_t n) {
    std::vector<Transaction> out;
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      if (auto t = reader.next(500ms)) out.push_back(std::move(*t));
    }
    EXPECT_EQ(out.size(), n) << "transactions that arrived";
    return out;
  }

  // Reads transactions up to and including the one inserting `marker` into
  // marker(m): what arrived before it, without guessing how long to wait.
  static std::vector<Transaction> read_until_marker(TransactionReader& reader, const std::string& marker) {
    std::vector<Transaction> out;
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto t = reader.next(500ms);
      if (!t) continue;
      for (const auto& c : changes_of(*t))
        if (c.relation.name == "marker" && value(c, "m") == marker) return out;
      out.push_back(std::move(*t));
    }
    ADD_FAILURE() << "marker " << marker << " never arrived";
    return out;
  }

  int64_t wal_bytes_of(const std::string& sql) {
    std::string before = conn_.exec("SELECT pg_current_wal_insert_lsn()").text(0, 0);
    conn_.exec(sql);
    return conn_.exec("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1)::bigint", std::vector<pg::Param>{before})
        .int64(0, 0);
  }

  TempDatabase db_;
  pg::Connection conn_;
};

// Decision 0011, option (a): a publication that publishes updates and
// deletes makes the application's own UPDATE and DELETE of a table without a
// primary key fail, until the table gets REPLICA IDENTITY FULL.
TEST_F(LogicalTest, APublicationBreaksTheApplicationUntilReplicaIdentityFull) {
  conn_.exec("CREATE TABLE jobs (job_no text, name text); INSERT INTO jobs VALUES ('J1', 'a'), ('J2', 'b')");
  conn_.exec("CREATE PUBLICATION evidence FOR TABLE jobs");
  for (const char* sql : {"UPDATE jobs SET name = 'x' WHERE job_no = 'J1'", "DELETE FROM jobs WHERE job_no = 'J2'"}) {
    try {
      conn_.exec(sql);
      ADD_FAILURE() << sql << " worked under a publication without a replica identity";
    } catch (const pg::Error& e) {
      EXPECT_EQ(e.sqlstate(), "55000") << e.what();
      EXPECT_NE(std::string(e.what()).find("does not have a replica identity"), std::string::npos) << e.what();
    }
  }
  conn_.exec("INSERT INTO jobs VALUES ('J3', 'c')");  // inserts are never refused

  conn_.exec("ALTER TABLE jobs REPLICA IDENTITY FULL");
  EXPECT_EQ(conn_.exec("UPDATE jobs SET name = 'x' WHERE job_no = 'J1'").affected(), 1);
  EXPECT_EQ(conn_.exec("DELETE FROM jobs WHERE job_no = 'J2'").affected(), 1);
  conn_.exec("DROP PUBLICATION evidence");
}

// Decision 0011, the default (b): a test_decoding slot needs no publication
// and no schema change, the application's UPDATE and DELETE keep working, and
// the WAL then carries no old key: an update brings only the new row, a
// delete only the fact that some row of the table went. The opt-in
// (REPLICA IDENTITY FULL) keeps them working and brings the whole old row,
// at a WAL cost measured here.
TEST_F(LogicalTest, TheDefaultChangesNothingOnTheDesktopAndTheOptInBringsOldRows) {
  conn_.exec(
      "CREATE TABLE jobs (job_no text, name text, qty int); INSERT INTO jobs VALUES ('J1', 'a', 1), ('J2', 'b', 2)");
  std::string slot = create_slot("default_identity");
  auto s = stream(slot);
  TransactionReader reader(*s);

  EXPECT_EQ(conn_.exec("UPDATE jobs SET name = 'renamed' WHERE job_no = 'J1'").affected(), 1);
  EXPECT_EQ(conn_.exec("DELETE FROM jobs WHERE job_no = 'J2'").affected(), 1);
  EXPECT_EQ(conn_.exec("SELECT relreplident FROM pg_class WHERE relname = 'jobs'").text(0, 0), "d");
  EXPECT_EQ(conn_.exec("SELECT count(*) FROM pg_publication").int64(0, 0), 0);
  auto txs = read(reader, 2);
  ASSERT_EQ(txs.size(), 2u);
  auto update = changes_of(txs[0]).at(0);
  EXPECT_EQ(update.kind, ChangeKind::update);
  EXPECT_TRUE(update.no_old_key);
  EXPECT_TRUE(update.old_key.empty());
  EXPECT_EQ(value(update, "job_no"), "J1");
  EXPECT_EQ(value(update, "name"), "renamed");
  auto removed = changes_of(txs[1]).at(0);
  EXPECT_EQ(removed.kind, ChangeKind::remove);
  EXPECT_TRUE(removed.no_old_key) << "a delete without a replica identity carries no old key";
  EXPECT_TRUE(removed.old_key.empty());
  EXPECT_EQ(removed.relation, (logical::Relation{"public", "jobs"}));

  // The opt-in: follow: { replica_identity: full }, described first, then
  // applied to the tables without an old key only.
  conn_.exec("CREATE TABLE keyed (id int PRIMARY KEY)");
  auto identities = logical::read_identities(conn_, {{"public", "jobs"}, {"public", "keyed"}, {"public", "absent"}});
  ASSERT_EQ(identities.size(), 2u);
  EXPECT_EQ(identities[0].old_row, logical::OldRow::none);
  EXPECT_NE(identities[0].describe().find("ALTER TABLE \"public\".\"jobs\" REPLICA IDENTITY FULL"), std::string::npos)
      << identities[0].describe();
  EXPECT_EQ(identities[1].old_row, logical::OldRow::primary_key);
  EXPECT_EQ(identities[1].key_columns, std::vector<std::string>{"id"});
  EXPECT_TRUE(identities[1].opt_in_ddl().empty());
  {
    // An application transaction holding the table: the opt-in gives up
    // after its lock timeout (transient), changing nothing.
    pg::Connection app = db_.connect();
    app.exec("BEGIN; SELECT count(*) FROM jobs");
    try {
      logical::set_replica_identity_full(conn_, identities, 100);
      ADD_FAILURE() << "the opt-in waited for the application's transaction";
    } catch (const pg::Error& e) {
      EXPECT_EQ(e.sqlstate(), "55P03") << e.what();
      EXPECT_TRUE(e.is_transient());
    }
    app.exec("COMMIT");
    EXPECT_EQ(conn_.exec("SELECT relreplident FROM pg_class WHERE relname = 'jobs'").text(0, 0), "d");
  }
  auto changed = logical::set_replica_identity_full(conn_, identities);
  EXPECT_EQ(changed, (std::vector<logical::Relation>{{"public", "jobs"}}));
  EXPECT_EQ(logical::read_identities(conn_, {{"public", "jobs"}}).at(0).old_row, logical::OldRow::full_row);
  EXPECT_EQ(conn_.exec("SELECT relreplident FROM pg_class WHERE relname = 'keyed'").text(0, 0), "d");
  conn_.exec("INSERT INTO jobs VALUES ('J3', NULL, 3)");
  EXPECT_EQ(conn_.exec("UPDATE jobs SET name = 'again' WHERE job_no = 'J1'").affected(), 1);
  EXPECT_EQ(conn_.exec("DELETE FROM jobs WHERE job_no = 'J3'").affected(), 1);
  txs = read(reader, 3);
  ASSERT_EQ(txs.size(), 3u);
  update = changes_of(txs[1]).at(0);
  EXPECT_FALSE(update.no_old_key);
  EXPECT_EQ(value(update, "name", true), "renamed");
  EXPECT_EQ(value(update, "qty", true), "1");
  EXPECT_EQ(value(update, "name"), "again");
  removed = changes_of(txs[2]).at(0);
  EXPECT_FALSE(removed.no_old_key);
  EXPECT_EQ(value(removed, "job_no", true), "J3");
  EXPECT_EQ(value(removed, "qty", true), "3");
  EXPECT_EQ(value(removed, "name", true), "(absent)") << "an old key omits NULL columns: NULL";

  // The cost of FULL: WAL of 5000 updates (one column) and 5000 deletes of
  // a 10-column row, default against FULL (full_page_writes is off on the
  // test servers: row records only).
  for (const char* t : {"wide_d", "wide_f"})
    conn_.exec("CREATE TABLE " + std::string(t) +
               " (c1 text, c2 text, c3 text, c4 text, c5 text, c6 int, c7 int, c8 int, c9 date, c10 numeric); "
               "INSERT INTO " +
               t +
               " SELECT md5(i::text), md5(i::text), 'name ' || i, 'city', 'x', i, i, i, '2026-01-01', i * 1.5 "
               "FROM generate_series(1, 5000) i");
  conn_.exec("ALTER TABLE wide_f REPLICA IDENTITY FULL");
  int64_t update_d = wal_bytes_of("UPDATE wide_d SET c6 = c6 + 1");
  int64_t update_f = wal_bytes_of("UPDATE wide_f SET c6 = c6 + 1");
  int64_t delete_d = wal_bytes_of("DELETE FROM wide_d");
  int64_t delete_f = wal_bytes_of("DELETE FROM wide_f");
  std::cout << "WAL for 5000 rows: update default " << update_d << " bytes, FULL " << update_f << "; delete default "
            << delete_d << ", FULL " << delete_f << "\n";
  EXPECT_GT(update_f, update_d);
  EXPECT_GT(delete_f, delete_d);
  s.reset();
}

TEST_F(LogicalTest, EveryKindOfChangeDecodes) {
  conn_.exec(
      "CREATE TABLE jobs (id int PRIMARY KEY, name text, qty numeric, done boolean, at timestamp, note text);"
      "CREATE TABLE \"Odd Table\" (\"Key Col\" int, \"it's\" text);"
      "CREATE TABLE tasks (job_id int, txt varchar(20), flags bit(4), tags text[])");
  std::string slot = create_slot("kinds");
  auto s = stream(slot);
  TransactionReader reader(*s);

  conn_.exec("INSERT INTO jobs VALUES (1, 'it''s ünïcödé 日本 \"q\" x:y', 1.50, true, '2026-01-02 03:04:05', NULL)");
  conn_.exec("UPDATE jobs SET name = 'renamed', done = false WHERE id = 1");
  conn_.exec("UPDATE jobs SET id = 2 WHERE id = 1");
  conn_.exec(
      "BEGIN; INSERT INTO tasks VALUES (2, 'null', B'1010', '{a,\"b c\"}'); INSERT INTO \"Odd Table\" VALUES (7, ''); "
      "UPDATE jobs SET qty = NULL WHERE id = 2; DELETE FROM jobs WHERE id = 2; COMMIT");
  conn_.exec("TRUNCATE tasks, \"Odd Table\"");
  // An unchanged TOASTed value is not in the WAL of an update.
  conn_.exec(
      "INSERT INTO jobs SELECT 3, 'big', 0, true, NULL, string_agg(md5(i::text), '') FROM generate_series(1, 2000) i");
  conn_.exec("UPDATE jobs SET name = 'still big' WHERE id = 3");

  auto txs = read(reader, 7);
  ASSERT_EQ(txs.size(), 7u);
  for (size_t i = 1; i < txs.size(); ++i) {
    EXPECT_LT(txs[i - 1].end_lsn, txs[i].end_lsn) << "commit order";
    EXPECT_LT(txs[i].first_lsn, txs[i].end_lsn);
    EXPECT_FALSE(txs[i].commit_time.empty());
  }

  auto insert = changes_of(txs[0]);
  ASSERT_EQ(insert.size(), 1u);
  EXPECT_EQ(insert[0].kind, ChangeKind::insert);
  EXPECT_EQ(value(insert[0], "id"), "1");
  EXPECT_EQ(value(insert[0], "name"), "it's ünïcödé 日本 \"q\" x:y");
  EXPECT_EQ(value(insert[0], "qty"), "1.50");
  EXPECT_EQ(value(insert[0], "done"), "t") << "the server's text output of a boolean";
  EXPECT_EQ(value(insert[0], "at"), "2026-01-02 03:04:05");
  EXPECT_EQ(value(insert[0], "note"), std::nullopt);
  EXPECT_EQ(insert[0].find("at")->type, "timestamp without time zone");

  auto same_key = changes_of(txs[1]).at(0);
  EXPECT_EQ(same_key.kind, ChangeKind::update);
  EXPECT_TRUE(same_key.no_old_key) << "a primary key that did not change is not logged again";
  EXPECT_EQ(value(same_key, "done"), "f");

  auto key_change = changes_of(txs[2]).at(0);
  EXPECT_FALSE(key_change.no_old_key);
  ASSERT_EQ(key_change.old_key.size(), 1u) << "the old key: the primary key's columns only";
  EXPECT_EQ(value(key_change, "id", true), "1");
  EXPECT_EQ(value(key_change, "id"), "2");

  auto several = changes_of(txs[3]);
  ASSERT_EQ(several.size(), 4u) << "one transaction across three tables, in order";
  EXPECT_EQ(several[0].relation, (logical::Relation{"public", "tasks"}));
  EXPECT_EQ(value(several[0], "txt"), "null") << "the text 'null' is not NULL";
  EXPECT_EQ(value(several[0], "flags"), "1010");
  EXPECT_EQ(value(several[0], "tags"), "{a,\"b c\"}");
  EXPECT_EQ(several[0].find("tags")->type, "text[]");
  EXPECT_EQ(several[1].relation, (logical::Relation{"public", "Odd Table"}));
  EXPECT_EQ(value(several[1], "Key Col"), "7");
  EXPECT_EQ(value(several[1], "it's"), "");
  EXPECT_EQ(several[2].kind, ChangeKind::update);
  EXPECT_EQ(value(several[2], "qty"), std::nullopt);
  EXPECT_EQ(several[3].kind, ChangeKind::remove);
  EXPECT_FALSE(several[3].no_old_key);
  EXPECT_EQ(value(several[3], "id", true), "2");

  auto truncate = changes_of(txs[4]);
  ASSERT_EQ(truncate.size(), 2u);
  EXPECT_EQ(truncate[0].kind, ChangeKind::truncate);
  EXPECT_EQ(truncate[0].relation.name, "tasks");
  EXPECT_EQ(truncate[1].relation.name, "Odd Table");

  auto big = changes_of(txs[5]).at(0);
  EXPECT_EQ(value(big, "note")->size(), 64000u);
  auto toast = changes_of(txs[6]).at(0);
  EXPECT_EQ(toast.unchanged_toast, std::vector<std::string>{"note"});
  EXPECT_EQ(value(toast, "note"), "(absent)");
  EXPECT_EQ(value(toast, "name"), "still big");
  s.reset();
}

// 200,000 rows in one desktop transaction: decoded through the spool, never
// held whole in memory, read back complete and in order.
TEST_F(LogicalTest, ALargeTransactionIsSpilledAndReadBackInOrder) {
  conn_.exec("CREATE TABLE lines (id int, payload text)");
  std::string slot = create_slot("large");
  auto s = stream(slot);
  logical::SpoolLimits limits;  // the defaults
  TransactionReader reader(*s, limits);
  conn_.exec("INSERT INTO lines SELECT i, 'row ' || i || ' ' || md5(i::text) FROM generate_series(1, 200000) i");
  auto started = std::chrono::steady_clock::now();
  auto txs = read(reader, 1);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::cout << "200000-row transaction decoded and spooled in " << took.count() << " ms (informational)\n";
  ASSERT_EQ(txs.size(), 1u);
  const auto& spool = txs[0].changes;
  EXPECT_EQ(spool.size(), 200000u);
  EXPECT_TRUE(spool.spilled());
  EXPECT_LE(spool.peak_memory_bytes(), limits.max_bytes);
  EXPECT_LE(spool.peak_memory_changes(), limits.max_changes + 1) << "at most a tenth of it was ever in memory";
  std::cout << "200000 rows: " << spool.spilled_bytes() << " bytes spilled, peak in memory "
            << spool.peak_memory_bytes() << " bytes\n";

  auto r = spool.reader();
  Change c;
  int64_t expected = 1;
  bool in_order = true;
  while (r.next(c)) {
    if (value(c, "id") != std::to_string(expected) ||
        value(c, "payload")->rfind("row " + std::to_string(expected) + " ", 0) != 0)
      in_order = false;
    ++expected;
  }
  EXPECT_TRUE(in_order);
  EXPECT_EQ(expected - 1, 200000);
  s.reset();
}

// The exported snapshot sees exactly the rows committed before the slot's
// consistent point; a row committed after arrives through the stream: never
// both, never neither. (The endpoint is a URI here: replication=database is
// added as its query parameter.)
TEST_F(LogicalTest, TheExportedSnapshotAndTheStreamMeetWithoutGapOrOverlap) {
  conn_.exec("CREATE TABLE marker (m text); CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)");
  pg::Endpoint uri{db_.url(), "", "stagesync-test", 10};
  ReplicationConnection repl(uri);
  EXPECT_EQ(repl.identify_system().database, db_.name());
  auto created = repl.create_slot("snapshot", logical::kPlugin, /*export_snapshot=*/true);
  ASSERT_FALSE(created.snapshot_name.empty());
  EXPECT_TRUE(created.consistent_point.valid());
  conn_.exec("INSERT INTO t VALUES (11)");  // after the consistent point

  pg::Connection reader_conn = db_.connect();
  logical::begin_in_snapshot(reader_conn, created.snapshot_name);
  EXPECT_EQ(reader_conn.exec("SELECT count(*), sum(id) FROM t").text(0, 0), "10");
  EXPECT_EQ(reader_conn.exec("SELECT max(id) FROM t").text(0, 0), "10");
  reader_conn.exec("COMMIT");

  repl.start(created.name, created.consistent_point, logical::test_decoding_options());
  TransactionReader reader(repl);
  conn_.exec("INSERT INTO t VALUES (12)");
  conn_.exec("INSERT INTO marker VALUES ('end')");
  auto txs = read_until_marker(reader, "end");
  std::vector<std::string> ids;
  for (const auto& t : txs)
    for (const auto& c : changes_of(t)) ids.push_back(*value(c, "id"));
  EXPECT_EQ(ids, (std::vector<std::string>{"11", "12"}));
}

// Nothing is confirmed unless the caller says so: after a reconnect the
// same transactions come again; confirmed ones do not.
TEST_F(LogicalTest, UnconfirmedChangesAreSentAgainConfirmedOnesAreNot) {
  conn_.exec("CREATE TABLE marker (m text); CREATE TABLE t (id int)");
  std::string slot = create_slot("confirm");
  std::vector<Lsn> first_ends;
  std::vector<uint32_t> first_xids;
  {
    auto s = stream(slot);
    TransactionReader reader(*s);
    conn_.exec("INSERT INTO t VALUES (1)");
    conn_.exec("INSERT INTO t VALUES (2)");
    conn_.exec("INSERT INTO marker VALUES ('m1')");
    auto txs = read_until_marker(reader, "m1");
    ASSERT_EQ(txs.size(), 2u);
    for (const auto& t : txs) {
      first_ends.push_back(t.end_lsn);
      first_xids.push_back(t.xid);
    }
  }  // disconnect without confirming anything (status updates went out, with no flush position)
  {
    auto s = stream(slot);
    TransactionReader reader(*s);
    auto txs = read_until_marker(reader, "m1");
    ASSERT_EQ(txs.size(), 2u) << "unconfirmed transactions come again";
    EXPECT_EQ(txs[0].xid, first_xids[0]);
    EXPECT_EQ(txs[1].end_lsn, first_ends[1]);
    EXPECT_EQ(*value(changes_of(txs[1]).at(0), "id"), "2");
    s->confirm(txs[0].end_lsn);  // the first one is committed in the target
    // The server applies the status update asynchronously: wait until it shows.
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (logical::slot_status(conn_, slot).confirmed_flush_lsn < std::optional<Lsn>(txs[0].end_lsn) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    EXPECT_EQ(logical::slot_status(conn_, slot).confirmed_flush_lsn, std::optional<Lsn>(txs[0].end_lsn));
    EXPECT_EQ(s->confirmed(), txs[0].end_lsn);
  }
  {
    auto s = stream(slot);
    TransactionReader reader(*s);
    auto txs = read_until_marker(reader, "m1");
    ASSERT_EQ(txs.size(), 1u) << "only the unconfirmed second transaction";
    EXPECT_EQ(txs[0].xid, first_xids[1]);
  }
}

// Keepalives that ask for a reply are answered: with wal_sender_timeout at
// 2 s the server ends a stream whose client stays silent for 2 s (it asks
// for a reply after 1 s); this one idles for 4 s and still delivers the next
// transaction.
TEST_F(LogicalTest, KeepalivesAreAnsweredSoAQuietStreamStaysOpen) {
  conn_.exec("CREATE TABLE t (id int)");
  std::string slot = create_slot("keepalive");
  auto s = stream(slot);
  TransactionReader reader(*s);
  bool quiet = true;
  {
    ServerSetting timeout("wal_sender_timeout", "2s");
    for (int i = 0; i < 8; ++i) quiet = quiet && !reader.next(500ms);
  }
  EXPECT_TRUE(quiet);
  EXPECT_TRUE(s->server_wal_end().valid()) << "keepalives arrived";
  conn_.exec("INSERT INTO t VALUES (1)");
  auto txs = read(reader, 1);
  ASSERT_EQ(txs.size(), 1u);
  EXPECT_EQ(value(changes_of(txs[0]).at(0), "id"), "1");
}

// A connection cut in the middle of a transaction's stream is a connection
// loss (pg::Error, transient), not a hang and not a half transaction; the
// next stream sends the whole transaction again.
TEST_F(LogicalTest, ACutStreamIsAConnectionLossAndTheTransactionComesAgainWhole) {
  conn_.exec("CREATE TABLE t (id int, payload text)");
  std::string slot = create_slot("cut");
  conn_.exec("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i");
  TcpProxy proxy(db_.server().port());
  proxy.cut_after_bytes(100000, 1);  // about a third of the transaction's stream
  pg::Endpoint via{"host=127.0.0.1 port=" + std::to_string(proxy.port()) + " user=postgres dbname=" + db_.name(), "",
                   "stagesync-test", 10};
  {
    ReplicationConnection r(via);
    r.start(slot, {}, logical::test_decoding_options());
    TransactionReader reader(r);
    try {
      while (!reader.next(30s)) {
      }
      ADD_FAILURE() << "a whole transaction arrived through a cut connection";
    } catch (const pg::Error& e) {
      EXPECT_TRUE(e.is_connection_loss()) << e.what();
      EXPECT_TRUE(e.is_transient());
    }
    EXPECT_TRUE(reader.inside_transaction());
  }
  EXPECT_EQ(proxy.cuts(), 1);
  auto s = stream(slot);
  TransactionReader reader(*s);
  auto txs = read(reader, 1);
  ASSERT_EQ(txs.size(), 1u);
  EXPECT_EQ(txs[0].changes.size(), 5000u);
}

TEST_F(LogicalTest, ADroppedOrInvalidatedSlotIsATypedError) {
  std::string slot = create_slot("dropped");
  conn_.exec("SELECT pg_drop_replication_slot('dropped')");
  try {
    stream(slot);
    ADD_FAILURE() << "a stream from a dropped slot started";
  } catch (const logical::SlotLost& e) {
    EXPECT_EQ(e.reason(), logical::SlotLost::Reason::missing);
    EXPECT_EQ(e.slot(), "dropped");
  }
  ReplicationConnection repl(endpoint());
  EXPECT_THROW(repl.drop_slot("dropped"), logical::SlotLost);
  EXPECT_FALSE(logical::slot_status(conn_, slot).exists);

  // Invalidated: it held more WAL than max_slot_wal_keep_size allows.
  conn_.exec("CREATE TABLE t (id int)");
  std::string kept = create_slot("invalidated");
  logical::SlotStatus st;
  {
    ServerSetting keep("max_slot_wal_keep_size", "1MB");
    for (int i = 0; i < 3; ++i) conn_.exec("INSERT INTO t VALUES (1); SELECT pg_switch_wal()");
    conn_.exec("CHECKPOINT");
    st = logical::slot_status(conn_, kept);
  }
  EXPECT_TRUE(st.exists);
  EXPECT_TRUE(st.invalidated()) << "wal_status " << st.wal_status;
  try {
    stream(kept);
    ADD_FAILURE() << "a stream from an invalidated slot started";
  } catch (const logical::SlotLost& e) {
    EXPECT_EQ(e.reason(), logical::SlotLost::Reason::invalidated) << e.what();
  }
}

TEST_F(LogicalTest, ReadinessNamesWhatIsMissingAndHowToFixIt) {
  // Ready: a superuser on a logical server.
  logical::ReadinessOptions options;
  options.slot_name = "ready";
  options.endpoint = endpoint();
  auto problems = logical::check_readiness(conn_, options);
  for (const auto& p : problems) ADD_FAILURE() << p.code << ": " << p.message;

  // The plugin is not installed.
  options.plugin = "no_such_decoder";
  problems = logical::check_readiness(conn_, options);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].code, "plugin_missing");
  options.plugin = logical::kPlugin;

  // A role without REPLICATION.
  conn_.exec(
      "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'desk_app') THEN "
      "CREATE ROLE desk_app LOGIN; END IF; END $$");
  pg::Connection app(pg::Endpoint{db_.server().conninfo(db_.name()) + " user=desk_app", "", "stagesync-test", 10});
  problems = logical::check_readiness(app, options);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].code, "replication_role");
  EXPECT_NE(problems[0].fix.find("ALTER ROLE \"desk_app\" WITH REPLICATION"), std::string::npos) << problems[0].fix;

  // Every slot and every WAL sender in use (physical slots: instant, and
  // not tied to this database).
  {
    int64_t free_slots = conn_
                             .exec(
                                 "SELECT current_setting('max_replication_slots')::int - count(*) "
                                 "FROM pg_replication_slots")
                             .int64(0, 0);
    for (int64_t i = 0; i < free_slots; ++i)
      conn_.exec("SELECT pg_create_physical_replication_slot('filler_" + std::to_string(i) + "')");
    int64_t free_senders = conn_
                               .exec(
                                   "SELECT current_setting('max_wal_senders')::int - count(*) FROM "
                                   "pg_stat_activity WHERE backend_type = 'walsender'")
                               .int64(0, 0);
    std::vector<ReplicationConnection> senders;
    for (int64_t i = 0; i < free_senders; ++i) senders.emplace_back(endpoint());
    problems = logical::check_readiness(conn_, options);
    senders.clear();
    conn_.exec("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'filler_%'");
    std::vector<std::string> codes;
    for (const auto& p : problems) codes.push_back(p.code);
    EXPECT_EQ(codes, (std::vector<std::string>{"slots_exhausted", "wal_senders_exhausted", "replication_failed"}));
    ASSERT_EQ(problems.size(), 3u);
    EXPECT_NE(problems[0].fix.find("max_replication_slots"), std::string::npos);
    EXPECT_NE(problems[1].fix.find("max_wal_senders"), std::string::npos);
  }

  // pg_hba.conf refuses the replication connection (a logical one matches the
  // database column): the server's message and the line to add.
  {
    std::string hba = logical_server().directory() + "/data/pg_hba.conf";
    std::ifstream in(hba);
    std::stringstream old;
    old << in.rdbuf();
    std::ofstream(hba) << "host all hba_refused 127.0.0.1/32 reject\n" << old.str();
    conn_.exec("SELECT pg_reload_conf()");
    logical::ReadinessOptions refused = options;
    refused.endpoint.conninfo += " user=hba_refused";
    problems = logical::check_readiness(conn_, refused);
    std::ofstream(hba) << old.str();
    conn_.exec("SELECT pg_reload_conf()");
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_EQ(problems[0].code, "replication_refused");
    EXPECT_NE(problems[0].message.find("pg_hba.conf"), std::string::npos) << problems[0].message;
    EXPECT_NE(problems[0].fix.find("host    " + db_.name()), std::string::npos) << problems[0].fix;
  }

  // A server without wal_level = logical (the shared source server).
  TempDatabase plain(Servers::source(), "not_logical");
  pg::Connection pc = plain.connect();
  logical::ReadinessOptions plain_options;
  plain_options.endpoint = pg::Endpoint{plain.server().conninfo(plain.name()), "", "stagesync-test", 10};
  problems = logical::check_readiness(pc, plain_options);
  ASSERT_FALSE(problems.empty());
  EXPECT_EQ(problems[0].code, "wal_level");
  EXPECT_NE(problems[0].fix.find("wal_level = logical"), std::string::npos);
  EXPECT_NE(problems[0].fix.find("restart"), std::string::npos);
  // ...where creating a slot is the server's error, not a lost slot.
  ReplicationConnection repl(plain_options.endpoint);
  EXPECT_THROW(repl.create_slot("never", logical::kPlugin, false), pg::Error);
}

TEST_F(LogicalTest, SlotStatusShowsWhatTheSlotHoldsBack) {
  EXPECT_FALSE(logical::slot_status(conn_, "nothing_here").exists);
  conn_.exec("CREATE TABLE t (id int, payload text)");
  std::string slot = create_slot("held");
  conn_.exec("INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 20000) i");
  auto st = logical::slot_status(conn_, slot);
  EXPECT_TRUE(st.exists);
  EXPECT_FALSE(st.active);
  EXPECT_EQ(st.plugin, "test_decoding");
  ASSERT_TRUE(st.restart_lsn.has_value());
  ASSERT_TRUE(st.confirmed_flush_lsn.has_value());
  EXPECT_GT(st.retained_bytes, 1000000) << "the inserted rows' WAL is held for the slot";
  EXPECT_EQ(st.wal_status, "reserved");
  EXPECT_FALSE(st.invalidated());
}

// Round trips (decision 0006): a stream is one connection and one
// START_REPLICATION; the transactions then flow without the client waiting,
// and a batch's confirmation is one message. 200 transactions cost what one
// costs.
TEST_F(LogicalTest, AStreamCostsTheSameRoundTripsForOneOrTwoHundredTransactions) {
  conn_.exec("CREATE TABLE t (id int)");
  std::string slot = create_slot("round_trips");
  TcpProxy proxy(db_.server().port());
  pg::Endpoint via{"host=127.0.0.1 port=" + std::to_string(proxy.port()) + " user=postgres dbname=" + db_.name(), "",
                   "stagesync-test", 10};
  auto session = [&](int transactions) {
    wait_released(slot);  // (the previous session's walsender)
    proxy.reset_counters();
    ReplicationConnection r(via);
    r.start(slot, {}, logical::test_decoding_options());
    TransactionReader reader(r);
    conn_.exec("DO $$ BEGIN FOR i IN 1.." + std::to_string(transactions) +
               " LOOP INSERT INTO t VALUES (i); COMMIT; END LOOP; END $$");
    auto txs = read(reader, static_cast<size_t>(transactions));
    if (!txs.empty()) r.confirm(txs.back().end_lsn);  // once, after the batch's target commit
    return proxy.round_trips();
  };
  // Connecting (SSL refusal, startup), START_REPLICATION and the confirmation:
  // four bursts; the proxy may see one more or one fewer depending on how the
  // server's messages are split in time. A round trip per transaction would
  // show as about 200.
  constexpr int64_t kStreamSessionBudget = 6;
  int64_t one = session(1);
  int64_t many = session(200);
  std::cout << "round trips of a stream session: 1 transaction " << one << ", 200 transactions " << many << "\n";
  EXPECT_LE(one, kStreamSessionBudget);
  EXPECT_LE(many, kStreamSessionBudget) << "no round trip per transaction";
}

// Every field survives the spill file: NULL against empty text, old keys,
// the "no old key" flag, unchanged TOAST columns, truncates; in order, in a
// directory of the caller's choice, and read twice.
TEST(ChangeSpool, SpilledChangesComeBackExactly) {
  logical::SpoolLimits limits;
  limits.max_changes = 2;
  limits.directory = std::filesystem::temp_directory_path().string();
  std::vector<Change> given;
  given.push_back(
      Change{ChangeKind::insert,
             {"public", "Odd \"T\""},
             {{"a", "integer", "1"}, {"b", "text", std::nullopt}, {"c", "text", ""}, {"d", "text", "ünï\n'x'"}},
             {},
             false,
             {}});
  given.push_back(
      Change{ChangeKind::update, {"s", "t"}, {{"a", "integer", "2"}}, {{"a", "integer", "1"}}, false, {"big"}});
  given.push_back(Change{ChangeKind::update, {"s", "t"}, {{"a", "integer", "3"}}, {}, true, {}});
  given.push_back(Change{ChangeKind::remove, {"s", "t"}, {}, {}, true, {}});
  given.push_back(Change{ChangeKind::truncate, {"s", "u"}, {}, {}, false, {}});
  logical::ChangeSpool spool(limits);
  for (const auto& c : given) spool.append(c);
  EXPECT_TRUE(spool.spilled());
  EXPECT_EQ(spool.size(), given.size());
  EXPECT_LE(spool.peak_memory_changes(), 3u);
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<Change> back;
    auto reader = spool.reader();
    Change c;
    while (reader.next(c)) back.push_back(c);
    EXPECT_EQ(back, given) << "pass " << pass;
  }
}

TEST(Lsn, ParsesAndFormatsLikeTheServer) {
  EXPECT_EQ(Lsn::parse("16/B374D848").value, (uint64_t{0x16} << 32) | 0xB374D848u);
  EXPECT_EQ(Lsn::parse("16/b374d848").str(), "16/B374D848");
  EXPECT_EQ(Lsn{}.str(), "0/0");
  EXPECT_LT(Lsn::parse("0/FFFFFFFF"), Lsn::parse("1/0"));
  for (const char* bad : {"", "16", "/1", "1/", "G/1", "1/123456789", "1/2/3"})
    EXPECT_THROW(Lsn::parse(bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace stagesync::testing
