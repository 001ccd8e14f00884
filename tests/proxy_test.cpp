// The test-support TCP proxy as a slow link and a round-trip counter (what
// bench/sync_bench --rtt-ms and the round-trip budget tests rely on), through
// it to a real server, with plain libpq so every message is known.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>

#include "support/servers.h"
#include "support/tcp_proxy.h"

namespace stagesync::testing {
namespace {

using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

// No TLS or GSS negotiation (the test servers offer neither): connection
// setup is then exactly one round trip, the startup message (trust auth).
Conn connect_through(const TcpProxy& proxy) {
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(proxy.port()) +
                         " user=postgres dbname=postgres sslmode=disable gssencmode=disable";
  Conn c(PQconnectdb(conninfo.c_str()), &PQfinish);
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_OK) << PQerrorMessage(c.get());
  return c;
}

std::string exec_all(PGconn* c, const std::string& sql) {
  std::string out;
  EXPECT_EQ(PQsendQuery(c, sql.c_str()), 1) << PQerrorMessage(c);
  while (PGresult* r = PQgetResult(c)) {
    ExecStatusType s = PQresultStatus(r);
    EXPECT_TRUE(s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    if (s == PGRES_TUPLES_OK && PQntuples(r) > 0) out += PQgetvalue(r, 0, 0);
    PQclear(r);
  }
  return out;
}

// COPY FROM STDIN of at least `bytes` bytes of 100-byte text rows, in 64 kB
// messages; adds the rows sent to `rows`.
void copy_in(PGconn* c, size_t bytes, int64_t& rows) {
  PGresult* r = PQexec(c, "COPY pt FROM STDIN");
  ASSERT_EQ(PQresultStatus(r), PGRES_COPY_IN) << PQresultErrorMessage(r);
  PQclear(r);
  std::string row(99, 'x');
  row += '\n';
  std::string chunk;
  while (chunk.size() + row.size() <= 65536) chunk += row;
  for (size_t sent = 0; sent < bytes; sent += chunk.size()) {
    ASSERT_EQ(PQputCopyData(c, chunk.data(), static_cast<int>(chunk.size())), 1);
    rows += static_cast<int64_t>(chunk.size() / row.size());
  }
  ASSERT_EQ(PQputCopyEnd(c, nullptr), 1);
  r = PQgetResult(c);
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  PQclear(r);
  EXPECT_EQ(PQgetResult(c), nullptr);
}

class ProxyCounts : public ::testing::TestWithParam<int> {};

TEST_P(ProxyCounts, RoundTripsAreWaitsForTheServer) {
  TcpProxy proxy(Servers::target().port());
  proxy.set_delay(std::chrono::milliseconds(GetParam()));

  proxy.reset_counters();
  Conn c = connect_through(proxy);
  EXPECT_EQ(proxy.round_trips(), 1) << "connection setup: the startup message";
  EXPECT_EQ(proxy.connections(), 1);
  EXPECT_GT(proxy.bytes_up(), 0);
  EXPECT_GT(proxy.bytes_down(), 0);

  proxy.reset_counters();
  for (int i = 0; i < 7; ++i) EXPECT_EQ(exec_all(c.get(), "SELECT 1"), "1");
  EXPECT_EQ(proxy.round_trips(), 7) << "autocommit simple queries: one each";
  EXPECT_EQ(proxy.connections(), 0) << "counters were reset, no new connection";

  proxy.reset_counters();
  EXPECT_EQ(exec_all(c.get(), "SELECT 1; SELECT 2"), "12");
  EXPECT_EQ(proxy.round_trips(), 1) << "several statements in one message wait once";

  exec_all(c.get(), "CREATE TEMP TABLE pt (v text)");
  int64_t rows = 0;
  proxy.reset_counters();
  copy_in(c.get(), size_t{1} << 20, rows);
  int64_t one_mb = proxy.round_trips();
  EXPECT_GE(proxy.bytes_up(), int64_t{1} << 20);
  proxy.reset_counters();
  copy_in(c.get(), size_t{4} << 20, rows);
  EXPECT_EQ(proxy.round_trips(), one_mb) << "COPY waits the same whatever its size";
  EXPECT_EQ(one_mb, 2) << "COPY: the statement (for CopyInResponse), then the data (for CommandComplete)";
  EXPECT_EQ(exec_all(c.get(), "SELECT count(*) FROM pt"), std::to_string(rows));
}

INSTANTIATE_TEST_SUITE_P(DirectAndDelayed, ProxyCounts, ::testing::Values(0, 5),
                         [](const auto& info) { return info.param == 0 ? "Direct" : "Delayed5ms"; });

TEST(ProxyDelay, ARoundTripTakesAtLeastTwiceTheOneWayDelay) {
  TcpProxy proxy(Servers::target().port());
  proxy.set_delay(std::chrono::milliseconds(25));
  Conn c = connect_through(proxy);
  for (int i = 0; i < 3; ++i) {
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(exec_all(c.get(), "SELECT 1"), "1");
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, std::chrono::milliseconds(50)) << "a 25 ms delay each way is a 50 ms round trip at least";
  }
}

TEST(ProxyDelay, LargeResultsArriveWholeAndInOrder) {
  TcpProxy proxy(Servers::target().port());
  proxy.set_delay(std::chrono::milliseconds(5));
  Conn c = connect_through(proxy);
  // About 8 MB of text both ways: sent as a literal, returned as rows.
  const char* sql =
      "SELECT md5(string_agg(v, ',' ORDER BY i)) FROM (SELECT i, repeat(md5(i::text), 8) AS v "
      "FROM generate_series(1, 30000) i) s";
  std::string expected = exec_all(c.get(), sql);
  PGresult* r = PQexec(c.get(), "SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 30000) i ORDER BY i");
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
  ASSERT_EQ(PQntuples(r), 30000);
  std::string joined;
  for (int i = 0; i < PQntuples(r); ++i) {
    EXPECT_EQ(std::string(PQgetvalue(r, i, 0)), std::to_string(i + 1));
    if (i) joined += ',';
    joined += PQgetvalue(r, i, 1);
  }
  PQclear(r);
  EXPECT_GT(proxy.bytes_down(), static_cast<int64_t>(joined.size()));
  std::string literal = "SELECT md5('" + joined + "')";
  EXPECT_EQ(exec_all(c.get(), literal), expected) << "the bytes sent up arrive in order too";
}

}  // namespace
}  // namespace stagesync::testing
