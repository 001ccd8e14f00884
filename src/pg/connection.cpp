#include "pg/connection.h"

#include <poll.h>

#include <cstdlib>
#include <memory>

#include "pg/interrupt.h"
#include "pg/pipeline.h"

namespace stagesync::pg {
namespace {

std::string field(const PGresult* res, int code) {
  if (!res) return {};
  const char* v = PQresultErrorField(res, code);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void ignore_notice(void*, const char*) {}

// An idle session's server speaks only to report a setting or to end the
// session: libpq hands such an ErrorResponse to the notice receiver. Keeps the
// primary message of a FATAL (a PANIC too) in `arg` (a std::string).
void keep_fatal(void* arg, const PGresult* res) {
  std::string severity = field(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity == "FATAL" || severity == "PANIC") *static_cast<std::string*>(arg) = field(res, PG_DIAG_MESSAGE_PRIMARY);
}

}  // namespace

int64_t Result::int64(int row, int col) const {
  std::string v(get(row, col));
  return v.empty() ? 0 : std::stoll(v);
}

int64_t Result::affected() const {
  if (!r_) return 0;
  const char* n = PQcmdTuples(r_);
  return (n && *n) ? std::stoll(n) : 0;
}

Connection::Connection(const Endpoint& endpoint) {
  std::string timeout = std::to_string(endpoint.connect_timeout_s);
  // libpq keeps the last value of a repeated key, and the conninfo in "dbname"
  // is expanded in place: the defaults before it (dead-peer detection over
  // TCP, so a silently vanished server is noticed within about a minute
  // instead of never) yield to anything the user wrote in the conninfo, while
  // the settings after it are stagesync's own.
  std::vector<const char*> keys = {"keepalives",       "keepalives_idle",  "keepalives_interval",
                                   "keepalives_count", "tcp_user_timeout", "dbname",
                                   "application_name", "connect_timeout",  "client_encoding"};
  std::vector<const char*> values = {
      "1",   "30", "10", "3", "60000", endpoint.conninfo.c_str(), endpoint.application_name.c_str(), timeout.c_str(),
      "UTF8"};
  const char* password = nullptr;
  if (!endpoint.password_env.empty()) {
    password = std::getenv(endpoint.password_env.c_str());
    if (!password) {
      throw MissingPassword("environment variable " + endpoint.password_env + " (named by password_env) is not set");
    }
    keys.push_back("password");
    values.push_back(password);
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  c_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (!c_ || PQstatus(c_) != CONNECTION_OK) {
    std::string msg = c_ ? trim(PQerrorMessage(c_)) : "out of memory";
    if (c_) {
      PQfinish(c_);
      c_ = nullptr;
    }
    throw Error("cannot connect: " + msg, Diagnostics{"08001", {}, {}, {}, {}, {}, {}}, true);
  }
  PQsetNoticeProcessor(c_, ignore_notice, nullptr);
  cancel_ = PQgetCancel(c_);
  if (cancel_) register_cancel(cancel_);
  // text_literal() relies on this (the default since PostgreSQL 9.1). The
  // server reports it at startup: a round trip only where it is off.
  const char* scs = PQparameterStatus(c_, "standard_conforming_strings");
  if (!scs || std::string_view(scs) != "on") {
    PGresult* r = PQexec(c_, "SET standard_conforming_strings = on");
    if (r) PQclear(r);
  }
}

void Connection::close() noexcept {
  if (cancel_) {
    unregister_cancel(cancel_);
    PQfreeCancel(cancel_);
    cancel_ = nullptr;
  }
  if (c_) {
    PQfinish(c_);
    c_ = nullptr;
  }
}

Connection::~Connection() { close(); }

Connection::Connection(Connection&& o) noexcept : c_(o.c_), cancel_(o.cancel_), deferred_(std::move(o.deferred_)) {
  o.c_ = nullptr;
  o.cancel_ = nullptr;
}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close();
    c_ = o.c_;
    cancel_ = o.cancel_;
    deferred_ = std::move(o.deferred_);
    o.c_ = nullptr;
    o.cancel_ = nullptr;
  }
  return *this;
}

Error Connection::error_from(const PGresult* res, std::string_view what) const {
  Diagnostics d;
  d.sqlstate = field(res, PG_DIAG_SQLSTATE);
  d.detail = field(res, PG_DIAG_MESSAGE_DETAIL);
  d.hint = field(res, PG_DIAG_MESSAGE_HINT);
  d.table = field(res, PG_DIAG_TABLE_NAME);
  d.column = field(res, PG_DIAG_COLUMN_NAME);
  d.constraint = field(res, PG_DIAG_CONSTRAINT_NAME);
  d.context = field(res, PG_DIAG_CONTEXT);
  std::string primary = field(res, PG_DIAG_MESSAGE_PRIMARY);
  if (primary.empty()) primary = trim(c_ ? PQerrorMessage(c_) : "no connection");
  bool lost = !c_ || PQstatus(c_) != CONNECTION_OK;
  if (lost && d.sqlstate.empty()) d.sqlstate = kConnectionFailure;
  std::string msg = std::string(what) + ": " + primary;
  if (!d.detail.empty()) msg += " (" + d.detail + ")";
  return Error(msg, std::move(d), lost);
}

std::vector<const char*> param_values(const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return values;
}

Result Connection::exec(std::string_view sql) { return exec(sql, std::vector<Param>{}); }

bool Connection::deferred_plain() const {
  for (const auto& d : deferred_)
    if (!d.params.empty() || d.on_result) return false;
  return true;
}

std::string Connection::take_deferred_text() {
  std::string text;
  for (const auto& d : take_deferred()) text += d.sql + ";\n";
  return text;
}

void Connection::send_deferred() {
  if (deferred_.empty()) return;
  Pipeline p(*this);
  p.run();  // sends what is deferred
}

Result Connection::exec(std::string_view sql, const std::vector<Param>& params) {
  if (!deferred_.empty() && params.empty() && deferred_plain()) {
    // The simple protocol takes "a; b; c" (sql may itself hold several
    // statements) and answers with the last statement's result.
    return exec(take_deferred_text() + std::string(sql), params);
  }
  if (!deferred_.empty()) {
    Result out;
    Pipeline p(*this);
    p.add(std::string(sql), params, [&](Result& r) { out = std::move(r); });
    p.run();
    return out;
  }
  std::string text(sql);
  std::vector<const char*> values = param_values(params);
  PGresult* raw = params.empty() ? PQexec(c_, text.c_str())
                                 : PQexecParams(c_, text.c_str(), static_cast<int>(values.size()), nullptr,
                                                values.data(), nullptr, nullptr, 0);
  Result res(raw);
  ExecStatusType st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return res;
  throw error_from(raw, "query failed on " + describe());
}

Result Connection::exec(std::string_view sql, const Params& params) {
  std::vector<Param> values(params.values().begin(), params.values().end());
  return exec(sql, values);
}

void Connection::send(std::string_view sql, const Params& params) {
  if (!deferred_.empty()) {  // in pipeline mode, after them: still one round trip
    sent_ = std::make_unique<Pipeline>(*this);
    sent_->set_async();
    sent_->add(std::string(sql), params, [this](Result& r) { received_ = std::move(r); });
    sent_->start();
    return;
  }
  std::string text(sql);
  std::vector<Param> given(params.values().begin(), params.values().end());
  std::vector<const char*> values = param_values(given);
  if (!PQsendQueryParams(c_, text.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                         0)) {
    throw error_from(nullptr, "query failed on " + describe());
  }
}

Result Connection::receive() {
  if (sent_) {
    std::unique_ptr<Pipeline> p = std::move(sent_);
    p->finish();
    return std::move(received_);
  }
  Result res(PQgetResult(c_));
  while (PGresult* more = PQgetResult(c_)) PQclear(more);
  ExecStatusType st = res.raw() ? PQresultStatus(res.raw()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return res;
  throw error_from(res.raw(), "query failed on " + describe());
}

std::string Connection::literal(std::string_view value) const {
  std::unique_ptr<char, decltype(&PQfreemem)> q(PQescapeLiteral(c_, value.data(), value.size()), &PQfreemem);
  if (!q) throw error_from(nullptr, "cannot quote literal");
  return std::string(q.get());
}

std::optional<std::string> Connection::closed_while_idle() {
  if (!c_) return "not connected";
  std::string fatal;
  PQnoticeReceiver previous = PQsetNoticeReceiver(c_, keep_fatal, &fatal);
  // Whatever waits on the socket (an end of file, a reset, the server's last
  // words, a setting it reports) is read; a few times, in case the end follows
  // a message that was read on its own.
  for (int i = 0; i < 4 && PQstatus(c_) == CONNECTION_OK && fatal.empty(); ++i) {
    pollfd p{PQsocket(c_), POLLIN, 0};
    if (p.fd < 0 || poll(&p, 1, 0) <= 0) break;  // nothing arrived (or poll cannot tell): as open as it looks
    if (!PQconsumeInput(c_)) break;
    PQisBusy(c_);  // parses what was read (PQconsumeInput() only reads): a FATAL reaches keep_fatal()
  }
  PQsetNoticeReceiver(c_, previous, nullptr);  // libpq's default receiver, which takes no argument
  if (!fatal.empty()) return "the server ended the session: " + fatal;
  if (PQstatus(c_) == CONNECTION_OK) return std::nullopt;
  std::string why = trim(PQerrorMessage(c_));
  size_t end = why.find('\n');  // libpq's first line; the rest guesses at causes
  return end == std::string::npos ? why : why.substr(0, end);
}

std::string Connection::describe() const {
  if (!c_) return "(closed connection)";
  std::string host = PQhost(c_) ? PQhost(c_) : "";
  std::string port = PQport(c_) ? PQport(c_) : "";
  std::string db = PQdb(c_) ? PQdb(c_) : "";
  if (!host.empty() && host[0] == '/') host = "socket " + host;
  return host + ":" + port + "/" + db;
}

}  // namespace stagesync::pg
