// Transaction-mode connection poolers (PgBouncer's pool_mode = transaction,
// Supabase's pooler on port 6543) hand each transaction of a client to
// whichever server session is free, and a client's idle server session to
// other clients. stagesync needs one server session for a whole connection:
// the run lock is a session advisory lock (through such a pooler it outlives
// the run, held by a pooled session, and two runs can share it), settings are
// made per session, and a run spans many transactions. So a connection
// through such a pooler is refused on connect, before anything is written
// (docs/decisions/0005-connection-poolers.md).
//
// A session-mode pooler (Supabase's port 5432) gives each client a server
// session of its own for as long as it is connected: that, like a direct
// connection, is fine and is never refused.
#pragma once

#include <memory>
#include <string>

#include "pg/connection.h"

namespace stagesync::run {

// What probe_session() saw.
struct SessionProbe {
  bool own_session = true;  // every statement ran in one server session that no other client was given
  std::string evidence;     // when not: what showed it, for the message
};

// Whether `conn` (opened from `endpoint`) has a server session of its own.
// Opens a second, short-lived probe connection to the same endpoint and
// interleaves a few single-statement transactions on both, each reporting
// its server process id and a session setting `conn` made in its first one.
// Through a transaction pooler, the probe is handed the server session `conn`
// just released (PgBouncer reuses the most recently released one first), or
// one of the two connections moves to another server session (when the
// pooler hands out the least recently used one), or the setting is gone (a
// pooler that resets sessions between transactions). A direct connection or
// a session pooler shows none of these, whatever else uses the server.
// Throws pg::Error when a statement or the probe connection fails.
SessionProbe probe_session(pg::Connection& conn, const pg::Endpoint& endpoint);

// connect_side()'s check: returns `conn` when it has a server session of its
// own; otherwise throws Refused (exit code 2) naming the side and the fix
// (use the session pooler, port 5432, or a direct connection).
std::unique_ptr<pg::Connection> require_own_session(const std::string& side, std::unique_ptr<pg::Connection> conn,
                                                    const pg::Endpoint& endpoint);

// The same check folded into round trips a run makes anyway (one round of
// probing instead of two; `check` and the other commands use the full one):
//   mark()        defers the statement that marks the connection's server
//                 session (process id, a token in a session setting); it
//                 travels with the connection's next statement, which must
//                 end its transaction (the run's catalog read does);
//   probe()       then opens the probe connection for two transactions
//                 (once per endpoint and process: an endpoint that passed is not probed again);
//   in_session()  a condition that holds only in the marked session, for the
//                 statement that takes the run lock: through a pooler that
//                 moved the connection, the lock is never taken.
class SessionMark {
 public:
  void mark(pg::Connection& conn);
  // Throws Refused when the probe connection is given the marked session.
  void probe(const std::string& side, const pg::Connection& conn, const pg::Endpoint& endpoint) const;
  // "pg_backend_pid() = $a AND current_setting(...) = $b", its values added to `params`.
  std::string in_session(std::vector<pg::Param>& params) const;
  // The refusal when in_session() did not hold.
  [[noreturn]] void refuse(const std::string& side, const pg::Connection& conn) const;

 private:
  int64_t pid_ = 0;
  std::string token_;
};

}  // namespace stagesync::run
