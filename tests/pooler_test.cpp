// Connection poolers in front of the target (and source), with a real
// PgBouncer the harness starts (support/pooler.h). A session-mode pooler
// (Supabase's port 5432) works like a direct connection: syncs run, the run
// lock is gone with the run. A transaction-mode pooler (Supabase's port 6543)
// would keep the session run lock in a pooled server session after the run
// and let two runs share it, so it is refused on connect, before any write
// (docs/decisions/0005-connection-poolers.md).
#include "support/pooler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "run/pooler_check.h"
#include "support/sync_fixture.h"

namespace stagesync::testing {
namespace {

class PoolerTest : public SyncFixture {
 protected:
  void SetUp() override {
    src().exec(
        "CREATE TABLE climaster (client_id int, name varchar(50), note text, con_id int, org_id int);"
        "INSERT INTO climaster VALUES (1, 'a', 'x', 1, 3), (2, 'b', 'y', 9, 3)");
    tgt().exec(
        "CREATE TABLE climaster (client_id int PRIMARY KEY, name varchar(50), note text, con_id int, org_id int, "
        "source char(1) NOT NULL DEFAULT 'D'); INSERT INTO climaster VALUES (100, 'mobile', NULL, 1, 3, 'M')");
  }
  // The configuration with the given source and target urls.
  std::string config(const std::string& source_url, const std::string& target_url) {
    return write_config(
        "source: { url: \"" + source_url + "\" }\ntarget: { url: \"" + target_url +
        "\" }\nowner: { column: source, value: D }\ntables:\n  - { name: climaster, key: [client_id] }\n");
  }
  std::string direct_config() { return config(source_url(), target_url()); }
  // Nothing of stagesync's on the target: no metadata schema (so no run rows
  // and no staging tables), no advisory lock held by anyone, the table as set up.
  void expect_target_untouched(const std::string& before) {
    EXPECT_EQ(count("SELECT count(*) FROM pg_namespace WHERE nspname = 'stagesync'"), 0);
    EXPECT_EQ(count("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'stagesync' OR c.relname LIKE 's\\_%'"),
              0);
    EXPECT_EQ(count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), 0);
    EXPECT_EQ(versions("climaster"), before);
  }
  int64_t advisory_locks() { return count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"); }
  pg::Endpoint endpoint(const std::string& conninfo) { return pg::Endpoint{conninfo, "", "stagesync-test", 10}; }
  // Opens `n` connections through `pooler` that each hold a transaction at
  // the same time, then closes them: the pool keeps `n` idle server sessions,
  // so which one a client is given depends on the pooler's order of reuse.
  void warm(const Pooler& pooler, int n) {
    std::vector<pg::Connection> held;
    for (int i = 0; i < n; ++i) {
      held.emplace_back(endpoint(pooler.conninfo(tgt_db_.name())));
      held.back().exec("BEGIN");
      held.back().exec("SELECT 1");
    }
    for (auto& c : held) c.exec("COMMIT");
  }
  std::string all(const CliResult& r) { return r.out + r.err; }
};

TEST_F(PoolerTest, ProbeSeesItsOwnSessionOnDirectConnectionsAndThroughASessionPooler) {
  Pooler session(Servers::target(), {Pooler::Mode::Session, 4, false});
  Pooler session_fifo(Servers::target(), {Pooler::Mode::Session, 4, true});
  warm(session, 3);
  warm(session_fifo, 3);
  // Other clients busy on the same database do not change the verdict.
  pg::Connection other = tgt_db_.connect();
  other.exec("BEGIN");
  other.exec("SELECT 1");
  // What a probe costs next to the connection it checks (printed, not asserted).
  std::vector<double> connect_ms(3), probe_ms(3);
  auto ms = [](auto start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  const int tries = 20;
  for (int i = 0; i < tries; ++i) {
    std::vector<std::string> conninfos = {Servers::target().conninfo(tgt_db_.name()), session.conninfo(tgt_db_.name()),
                                          session_fifo.conninfo(tgt_db_.name())};
    for (size_t k = 0; k < conninfos.size(); ++k) {
      auto start = std::chrono::steady_clock::now();
      pg::Connection conn(endpoint(conninfos[k]));
      connect_ms[k] += ms(start);
      start = std::chrono::steady_clock::now();
      run::SessionProbe p = run::probe_session(conn, endpoint(conninfos[k]));
      probe_ms[k] += ms(start);
      EXPECT_TRUE(p.own_session) << conninfos[k] << ": " << p.evidence;
    }
  }
  other.exec("COMMIT");
  const char* names[] = {"direct", "session pooler (LIFO)", "session pooler (FIFO)"};
  for (size_t k = 0; k < 3; ++k) {
    std::cout << "[ pooler   ] " << names[k] << ": connect " << connect_ms[k] / tries << " ms, probe "
              << probe_ms[k] / tries << " ms (mean of " << tries << ")\n";
  }
}

TEST_F(PoolerTest, ProbeFindsATransactionPoolerWhateverItsOrderOfReuseAndPoolSize) {
  for (bool round_robin : {false, true}) {
    for (int pool_size : {1, 4}) {
      Pooler pooler(Servers::target(), {Pooler::Mode::Transaction, pool_size, round_robin});
      if (pool_size > 1) warm(pooler, pool_size);
      std::map<std::string, int> seen;  // what showed it, with the server process ids left out
      for (int i = 0; i < 20; ++i) {
        pg::Endpoint e = endpoint(pooler.conninfo(tgt_db_.name()));
        pg::Connection conn(e);
        run::SessionProbe p = run::probe_session(conn, e);
        EXPECT_FALSE(p.own_session) << "round_robin " << round_robin << ", pool size " << pool_size << ", try " << i;
        EXPECT_FALSE(p.evidence.empty());
        ++seen[p.evidence.substr(0, p.evidence.find_first_of("0123456789"))];
      }
      std::cout << "[ pooler   ] transaction mode, " << (round_robin ? "FIFO" : "LIFO") << ", pool size " << pool_size
                << ":";
      for (const auto& [evidence, n] : seen) std::cout << " " << n << "x \"" << evidence << "\"";
      std::cout << "\n";
    }
  }
  // Statement mode gives a server session for even less time: refused the same way.
  Pooler statement(Servers::target(), {Pooler::Mode::Statement, 4, false});
  for (int i = 0; i < 5; ++i) {
    pg::Endpoint e = endpoint(statement.conninfo(tgt_db_.name()));
    pg::Connection conn(e);
    EXPECT_FALSE(run::probe_session(conn, e).own_session) << "statement mode, try " << i;
  }
}

TEST_F(PoolerTest, SyncThroughASessionPoolerWorksAndTheNextRunsAreNotRefused) {
  Pooler pooler(Servers::target(), {Pooler::Mode::Session, 4, false});
  std::string pooled = config(source_url(), pooler.url(tgt_db_.name()));
  CliResult first = cli({"sync", "--config", pooled});
  ASSERT_EQ(first.exit_code, 0) << all(first);
  EXPECT_EQ(content_of(tgt(), "climaster", {"client_id", "name", "note"}, "t.source = 'D'"),
            content_of(src(), "climaster", {"client_id", "name", "note"}));
  EXPECT_EQ(count("SELECT count(*) FROM climaster WHERE source = 'D'"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.runs WHERE status = 'succeeded'"), 1);
  // The run lock ended with the run's session: nothing holds it.
  EXPECT_EQ(advisory_locks(), 0);
  src().exec("UPDATE climaster SET name = 'a2' WHERE client_id = 1");
  CliResult pooled_again = cli({"sync", "--config", pooled});
  EXPECT_EQ(pooled_again.exit_code, 0) << all(pooled_again);
  src().exec("UPDATE climaster SET name = 'a3' WHERE client_id = 1");
  CliResult direct = cli({"sync", "--config", direct_config()});
  EXPECT_EQ(direct.exit_code, 0) << all(direct);
  EXPECT_EQ(count("SELECT count(*) FROM climaster WHERE name = 'a3'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.runs WHERE status = 'succeeded'"), 3);
  EXPECT_EQ(advisory_locks(), 0);
}

TEST_F(PoolerTest, TargetThroughATransactionPoolerIsRefusedBeforeAnyWrite) {
  Pooler pooler(Servers::target(), {Pooler::Mode::Transaction, 4, false});
  std::string pooled = config(source_url(), pooler.url(tgt_db_.name()));
  std::string before = versions("climaster");
  for (const char* command : {"sync", "plan", "check", "verify", "backup"}) {
    CliResult r = cli({command, "--config", pooled});
    EXPECT_EQ(r.exit_code, 2) << command << ": " << all(r);
    EXPECT_NE(all(r).find("target: 127.0.0.1:" + std::to_string(pooler.port())), std::string::npos) << all(r);
    EXPECT_NE(all(r).find("transaction-mode connection pooler"), std::string::npos) << all(r);
    EXPECT_NE(all(r).find("Use the session pooler (port 5432) or a direct connection"), std::string::npos) << all(r);
    expect_target_untouched(before);
  }
  // A run's own check (folded into its round trips: one probe round, then the
  // lock only in the marked session) whatever the pooler's order of reuse and size.
  for (bool round_robin : {false, true}) {
    for (int size : {1, 4}) {
      Pooler other(Servers::target(), {Pooler::Mode::Transaction, size, round_robin});
      std::string cfg = config(source_url(), other.url(tgt_db_.name()));
      for (int k = 0; k < 5; ++k) {
        CliResult r = cli({"sync", "--config", cfg});
        EXPECT_EQ(r.exit_code, 2) << "round robin " << round_robin << ", pool size " << size << ": " << all(r);
        expect_target_untouched(before);
      }
    }
  }
  // The refusal left nothing behind: the next direct run is not refused.
  CliResult direct = cli({"sync", "--config", direct_config()});
  EXPECT_EQ(direct.exit_code, 0) << all(direct);
  EXPECT_EQ(count("SELECT count(*) FROM climaster WHERE source = 'D'"), 2);
}

TEST_F(PoolerTest, SourceThroughATransactionPoolerIsRefusedBeforeAnyWrite) {
  Pooler pooler(Servers::source(), {Pooler::Mode::Transaction, 4, false});
  std::string before = versions("climaster");
  CliResult r = cli({"sync", "--config", config(pooler.url(src_db_.name()), target_url()), "--json"});
  EXPECT_EQ(r.exit_code, 2) << all(r);
  EXPECT_NE(r.out.find("source: 127.0.0.1:" + std::to_string(pooler.port())), std::string::npos) << r.out;
  ASSERT_FALSE(r.out.empty());
  std::string last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  EXPECT_EQ(nlohmann::json::parse(last)["exit_code"], 2) << r.out;
  expect_target_untouched(before);
}

}  // namespace
}  // namespace stagesync::testing
