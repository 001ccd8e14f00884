#include "run/pooler_check.h"

#include <mutex>
#include <random>
#include <set>

#include "pg/pipeline.h"
#include "pg/sql.h"
#include "run/run_errors.h"

namespace stagesync::run {
namespace {

// A custom setting only this check uses; it lives as long as the server session.
constexpr const char* kSetting = "stagesync.session_probe";
// Rounds of (probe, probe, connection): PgBouncer in either of its orders of
// reuse is caught in the first; the second is for poolers that pick at random.
constexpr int kRounds = 2;

struct Sample {
  int64_t pid = 0;
  std::string value;  // the probe setting as this server session has it ("" when never set)
};

Sample sample(pg::Connection& c) {
  pg::Result r = c.exec("SELECT pg_catalog.pg_backend_pid(), pg_catalog.current_setting($1, true)",
                        std::vector<pg::Param>{std::string(kSetting)});
  return Sample{r.int64(0, 0), r.is_null(0, 1) ? std::string() : r.text(0, 1)};
}

std::string random_token() {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> dist;
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (uint64_t v = dist(rd), i = 0; i < 16; ++i, v >>= 4) token += hex[v & 15];
  return token;
}

SessionProbe shared(std::string evidence) { return SessionProbe{false, std::move(evidence)}; }

}  // namespace

SessionProbe probe_session(pg::Connection& conn, const pg::Endpoint& endpoint) {
  std::string token = random_token();
  pg::Result first = conn.exec("SELECT pg_catalog.pg_backend_pid(), pg_catalog.set_config($1, $2, false)",
                               std::vector<pg::Param>{std::string(kSetting), token});
  int64_t own = first.int64(0, 0);
  pg::Endpoint probe_endpoint = endpoint;
  probe_endpoint.application_name += " (session probe)";
  pg::Connection probe(probe_endpoint);
  int64_t probe_pid = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      Sample s = sample(probe);
      if (s.pid == own || s.value == token) {
        return shared("a second connection was given the first one's server session (server process " +
                      std::to_string(s.pid) + ")");
      }
      if (probe_pid && s.pid != probe_pid) {
        return shared("one connection's transactions ran in server processes " + std::to_string(probe_pid) + " and " +
                      std::to_string(s.pid));
      }
      probe_pid = s.pid;
    }
    Sample s = sample(conn);
    if (s.pid != own) {
      return shared("one connection's transactions ran in server processes " + std::to_string(own) + " and " +
                    std::to_string(s.pid));
    }
    if (s.value != token) return shared("a session setting made in one transaction was gone in the next");
  }
  return SessionProbe{};
}

namespace {
[[noreturn]] void refuse_shared(const std::string& side, const pg::Connection& conn, const std::string& evidence) {
  throw Refused(side + ": " + conn.describe() + " goes through a transaction-mode connection pooler (" + evidence +
                "); stagesync needs one database session for a whole run (its run lock, settings and several "
                "transactions), which such a pooler does not keep. Use the session pooler (port 5432) or a direct "
                "connection: for Supabase, the \"Session pooler\" connection string instead of the \"Transaction "
                "pooler\" one (port 6543). Refused on connect, before any write");
}
}  // namespace

void SessionMark::mark(pg::Connection& conn) {
  token_ = random_token();
  conn.defer("SELECT pg_catalog.pg_backend_pid(), pg_catalog.set_config($1, $2, false)",
             std::vector<pg::Param>{std::string(kSetting), token_}, [this](pg::Result& r) { pid_ = r.int64(0, 0); });
}

void SessionMark::probe(const std::string& side, const pg::Connection& conn, const pg::Endpoint& endpoint) const {
  // An endpoint that passed once in this process is not probed again (a
  // follower's reconnect, a retried run): what it connects to does not turn
  // into a transaction pooler under the same address, and a pooler that moved
  // a session would still keep the run lock from being taken (in_session()).
  static std::mutex mutex;
  static std::set<std::string> passed;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (passed.count(endpoint.conninfo)) return;
  }
  pg::Endpoint probe_endpoint = endpoint;
  probe_endpoint.application_name += " (session probe)";
  pg::Connection probe(probe_endpoint);
  // Two transactions in one round trip (a Sync after each): a transaction
  // pooler hands each its server session as it comes.
  std::vector<Sample> samples(2);
  pg::Pipeline p(probe);
  p.set_sync_each();
  for (auto& smp : samples) {
    p.add("SELECT pg_catalog.pg_backend_pid(), pg_catalog.current_setting($1, true)",
          std::vector<pg::Param>{std::string(kSetting)}, [&smp](pg::Result& r) {
            smp = Sample{r.int64(0, 0), r.is_null(0, 1) ? std::string() : r.text(0, 1)};
          });
  }
  p.run();
  int64_t probe_pid = 0;
  for (const Sample& s : samples) {
    if (s.pid == pid_ || s.value == token_) {
      refuse_shared(side, conn,
                    "a second connection was given the first one's server session (server process " +
                        std::to_string(s.pid) + ")");
    }
    if (probe_pid && s.pid != probe_pid) {
      refuse_shared(side, conn,
                    "one connection's transactions ran in server processes " + std::to_string(probe_pid) + " and " +
                        std::to_string(s.pid));
    }
    probe_pid = s.pid;
  }
  std::lock_guard<std::mutex> lock(mutex);
  passed.insert(endpoint.conninfo);
}

std::string SessionMark::in_session(std::vector<pg::Param>& params) const {
  params.push_back(std::to_string(pid_));
  std::string pid = "$" + std::to_string(params.size());
  params.push_back(token_);
  std::string token = "$" + std::to_string(params.size());
  return "pg_catalog.pg_backend_pid() = " + pid + "::int AND pg_catalog.current_setting(" + pg::text_literal(kSetting) +
         ", true) IS NOT DISTINCT FROM " + token;
}

void SessionMark::refuse(const std::string& side, const pg::Connection& conn) const {
  refuse_shared(side, conn, "the run's transactions did not all run in the server session it was given");
}

std::unique_ptr<pg::Connection> require_own_session(const std::string& side, std::unique_ptr<pg::Connection> conn,
                                                    const pg::Endpoint& endpoint) {
  SessionProbe p = probe_session(*conn, endpoint);
  if (p.own_session) return conn;
  refuse_shared(side, *conn, p.evidence);
}

}  // namespace stagesync::run
