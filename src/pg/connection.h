// Move-only owner of a libpq connection.
//
// Every statement goes through exec(); values travel as parameters, never
// spliced into SQL. Identifiers and (where the protocol allows no parameter,
// as in COPY and DDL) literals are quoted here and only here.
// Errors are thrown as pg::Error; a result is returned only on success.
#pragma once

#include <libpq-fe.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pg/error.h"
#include "pg/result.h"
#include "pg/sql.h"

namespace stagesync::pg {

class Pipeline;

// Where to connect. `conninfo` is a libpq URI or key=value string. When
// `password_env` names an environment variable, its value is passed to libpq
// as the password; otherwise libpq's own PGPASSWORD/.pgpass/service apply.
struct Endpoint {
  std::string conninfo;
  std::string password_env;
  std::string application_name = "stagesync";
  int connect_timeout_s = 10;
};

using Param = std::optional<std::string>;
// libpq's view of statement parameters: pointers into `params` (NULL for a
// missing value), valid while `params` lives.
std::vector<const char*> param_values(const std::vector<Param>& params);

class Connection {
 public:
  // Connects or throws pg::Error (connection-loss flavoured). The message
  // names host, port and database, never the password.
  explicit Connection(const Endpoint& endpoint);
  ~Connection();
  void close() noexcept;
  Connection(Connection&& o) noexcept;
  Connection& operator=(Connection&& o) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues a statement whose result nobody reads (a session setting): it
  // travels with the next exec(), Pipeline::run() or COPY on this connection,
  // in the same round trip. Its error, if any, is thrown there.
  struct Deferred {
    std::string sql;
    std::vector<std::optional<std::string>> params;
    std::function<void(Result&)> on_result;  // called when it has been sent and answered
  };
  void defer(std::string sql, std::vector<std::optional<std::string>> params = {},
             std::function<void(Result&)> on_result = nullptr) {
    deferred_.push_back(Deferred{std::move(sql), std::move(params), std::move(on_result)});
  }
  // Takes the deferred statements (Pipeline::run() sends them first).
  std::vector<Deferred> take_deferred() { return std::exchange(deferred_, {}); }
  // Whether every deferred statement is free of parameters and callbacks
  // (then they can travel in one simple-protocol message, ahead of a COPY).
  bool deferred_plain() const;
  // Takes the deferred statements as "a;\nb;\n" (requires deferred_plain()).
  std::string take_deferred_text();
  // Sends the deferred statements now, if any (one round trip).
  void send_deferred();

  Result exec(std::string_view sql);
  Result exec(std::string_view sql, const std::vector<Param>& params);
  Result exec(std::string_view sql, const Params& params);
  // exec() in two halves, so statements on two servers can run at the same
  // time: send() returns once the statement is sent, receive() waits for its
  // result (and throws like exec()). Nothing else may be sent in between.
  void send(std::string_view sql, const Params& params);
  Result receive();

  // Quotes a value for the few places where the protocol takes no parameter
  // (COPY's query, DDL). Everywhere else values are parameters.
  std::string literal(std::string_view value) const;

  // "host:port/dbname" for messages.
  std::string describe() const;
  int backend_pid() const { return PQbackendPID(c_); }
  int server_version() const { return PQserverVersion(c_); }
  bool is_alive() const { return c_ && PQstatus(c_) == CONNECTION_OK; }
  // For a connection that waited with no statement under way: whether it was
  // closed meanwhile (the server ended the session, a NAT, proxy or pooler
  // dropped the idle connection, keepalives found the peer gone), told by what
  // already arrived on its socket: no round trip, nothing sent. Returns why
  // (libpq's or the server's words), or nullopt while it looks open. An open
  // answer is no promise: a peer that vanished without a word is found by the
  // next statement, as before.
  std::optional<std::string> closed_while_idle();
  PGconn* raw() const { return c_; }

  // Builds a pg::Error from the connection's current state.
  Error error_from(const PGresult* res, std::string_view what) const;

 private:
  PGconn* c_ = nullptr;
  PGcancel* cancel_ = nullptr;  // registered with pg/interrupt while open
  std::vector<Deferred> deferred_;
  std::unique_ptr<Pipeline> sent_;  // send() with deferred statements ahead of it
  Result received_;                 // its last statement's result
};

}  // namespace stagesync::pg
