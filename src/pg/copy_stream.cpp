#include "pg/copy_stream.h"

#include <optional>

namespace stagesync::pg {

CopyOut::CopyOut(Connection& conn, std::string_view copy_sql) : conn_(conn) {
  // Deferred statements (settings, the table's CREATE, the previous table's
  // ANALYZE) travel in the same simple-protocol message, ahead of the COPY.
  if (!conn_.deferred_plain()) conn_.send_deferred();  // parameters need the extended protocol: a round trip
  std::string sql = conn_.take_deferred_text();
  sql += copy_sql;
  Result res(PQexec(conn_.raw(), sql.c_str()));
  if (PQresultStatus(res.raw()) != PGRES_COPY_OUT)
    throw conn_.error_from(res.raw(), "COPY out failed on " + conn_.describe());
}

CopyOut::~CopyOut() {
  if (buf_) PQfreemem(buf_);
  if (!done_ && conn_.raw()) {
    // Abandoning a COPY OUT midway: the only clean way out is to cancel and
    // drain; the connection is then usable again (or broken, which callers see).
    if (PGcancel* cancel = PQgetCancel(conn_.raw())) {
      char err[256];
      PQcancel(cancel, err, sizeof err);
      PQfreeCancel(cancel);
    }
    char* b = nullptr;
    while (PQgetCopyData(conn_.raw(), &b, 0) > 0) PQfreemem(b);
    while (PGresult* r = PQgetResult(conn_.raw())) PQclear(r);
  }
}

bool CopyOut::next(std::string_view& chunk) {
  if (buf_) {
    PQfreemem(buf_);
    buf_ = nullptr;
  }
  if (done_) return false;
  int n = PQgetCopyData(conn_.raw(), &buf_, 0);
  if (n > 0) {
    chunk = std::string_view(buf_, static_cast<size_t>(n));
    return true;
  }
  done_ = true;
  if (n == -2) throw conn_.error_from(nullptr, "COPY out broke on " + conn_.describe());
  Result res(PQgetResult(conn_.raw()));
  if (PQresultStatus(res.raw()) != PGRES_COMMAND_OK)
    throw conn_.error_from(res.raw(), "COPY out failed on " + conn_.describe());
  while (PGresult* r = PQgetResult(conn_.raw())) PQclear(r);
  return false;
}

CopyIn::CopyIn(Connection& conn, std::string_view copy_sql) : conn_(conn) {
  // Deferred statements (settings, the table's CREATE, the previous table's
  // ANALYZE) travel in the same simple-protocol message, ahead of the COPY.
  if (!conn_.deferred_plain()) conn_.send_deferred();  // parameters need the extended protocol: a round trip
  std::string sql = conn_.take_deferred_text();
  sql += copy_sql;
  Result res(PQexec(conn_.raw(), sql.c_str()));
  if (PQresultStatus(res.raw()) != PGRES_COPY_IN) {
    open_ = false;
    throw conn_.error_from(res.raw(), "COPY in failed on " + conn_.describe());
  }
}

CopyIn::~CopyIn() {
  if ((open_ || next_ready_) && conn_.raw()) {
    // The server abandons the rest of the message too (a chain's later COPYs never start).
    PQputCopyEnd(conn_.raw(), "stagesync aborted the load");
    while (PGresult* r = PQgetResult(conn_.raw())) {
      ExecStatusType st = PQresultStatus(r);
      PQclear(r);
      if (st == PGRES_COPY_IN) PQputCopyEnd(conn_.raw(), "stagesync aborted the load");
      if (PQstatus(conn_.raw()) != CONNECTION_OK) break;
    }
  }
}

void CopyIn::write(std::string_view data) {
  if (PQputCopyData(conn_.raw(), data.data(), static_cast<int>(data.size())) != 1) {
    throw conn_.error_from(nullptr, "COPY in broke on " + conn_.describe());
  }
}

void CopyIn::read_on() {
  std::optional<Error> failed;
  after_.clear();
  while (PGresult* raw = PQgetResult(conn_.raw())) {
    Result r(raw);
    ExecStatusType st = PQresultStatus(raw);
    if (st == PGRES_COPY_IN && !failed) {
      next_ready_ = true;
      return;
    }
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) after_.push_back(r.affected());
    if (st == PGRES_COPY_IN) PQputCopyEnd(conn_.raw(), "stagesync aborted the load");
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY && st != PGRES_COPY_IN && !failed) {
      failed = conn_.error_from(raw, "query failed on " + conn_.describe());
    }
    if (PQstatus(conn_.raw()) != CONNECTION_OK) break;
  }
  if (failed) throw *failed;
}

int64_t CopyIn::finish() {
  open_ = false;
  if (PQputCopyEnd(conn_.raw(), nullptr) != 1) throw conn_.error_from(nullptr, "COPY in broke on " + conn_.describe());
  Result res(PQgetResult(conn_.raw()));
  if (PQresultStatus(res.raw()) != PGRES_COMMAND_OK) {
    Error e = conn_.error_from(res.raw(), "COPY in failed on " + conn_.describe());
    while (PGresult* r = PQgetResult(conn_.raw())) {
      PQclear(r);
      if (PQstatus(conn_.raw()) != CONNECTION_OK) break;
    }
    throw e;
  }
  int64_t n = res.affected();
  read_on();
  return n;
}

bool CopyIn::next() {
  if (!next_ready_) return false;
  next_ready_ = false;
  open_ = true;
  return true;
}

}  // namespace stagesync::pg
