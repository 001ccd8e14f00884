#include "logical/replication_connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "logical/slot_errors.h"
#include "pg/interrupt.h"

namespace stagesync::logical {
namespace {

using Clock = std::chrono::steady_clock;

// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
constexpr int64_t kPostgresEpochOffsetUs = 946684800LL * 1000000LL;

uint64_t read_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

int64_t now_postgres_us() {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
  return us - kPostgresEpochOffsetUs;
}

// Slot names are [a-z0-9_] (the server's rule); anything else is a caller's
// bug, refused before it reaches the replication grammar.
void require_slot_name(const std::string& name) {
  bool ok = !name.empty() && name.size() < 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  if (!ok) throw std::invalid_argument("not a replication slot name (lower-case letters, digits, _): " + name);
}

// The endpoint with replication=database added to its conninfo (a URI's
// query parameter, or a key=value pair; libpq keeps the last value of a key).
pg::Endpoint as_replication(pg::Endpoint endpoint) {
  std::string& c = endpoint.conninfo;
  bool uri = c.rfind("postgresql://", 0) == 0 || c.rfind("postgres://", 0) == 0;
  if (!uri)
    c += " replication=database";
  else
    c += (c.find('?') == std::string::npos ? "?" : "&") + std::string("replication=database");
  return endpoint;
}

}  // namespace

ReplicationConnection::ReplicationConnection(pg::Endpoint endpoint) : conn_(as_replication(std::move(endpoint))) {}

SystemIdentity ReplicationConnection::identify_system() {
  pg::Result r = conn_.exec("IDENTIFY_SYSTEM");
  SystemIdentity id;
  id.system_id = r.text(0, 0);
  id.timeline = static_cast<int>(r.int64(0, 1));
  id.wal_position = Lsn::parse(r.get(0, 2));
  if (!r.is_null(0, 3)) id.database = r.text(0, 3);
  return id;
}

CreatedSlot ReplicationConnection::create_slot(const std::string& name, const std::string& plugin,
                                               bool export_snapshot) {
  require_slot_name(name);
  // The pre-15 spelling (EXPORT_SNAPSHOT / NOEXPORT_SNAPSHOT) is accepted by
  // every server from 10 on.
  pg::Result r = conn_.exec("CREATE_REPLICATION_SLOT " + name + " LOGICAL " + pg::ident(plugin) +
                            (export_snapshot ? " EXPORT_SNAPSHOT" : " NOEXPORT_SNAPSHOT"));
  CreatedSlot slot;
  slot.name = r.text(0, 0);
  slot.consistent_point = Lsn::parse(r.get(0, 1));
  if (!r.is_null(0, 2)) slot.snapshot_name = r.text(0, 2);
  slot.plugin = r.text(0, 3);
  return slot;
}

void ReplicationConnection::throw_slot_error(const pg::Error& e, const std::string& slot) const {
  std::string what = e.what();
  if (e.sqlstate() == "42704") {
    throw SlotLost("replication slot \"" + slot + "\" does not exist on " + conn_.describe() +
                       " (dropped by someone?): the changes since its last confirmed position cannot be read",
                   slot, SlotLost::Reason::missing);
  }
  // 55000 with "cannot read from" (15) / "can no longer get changes from" (16+).
  if (e.sqlstate() == "55000" && (what.find("invalidated") != std::string::npos ||
                                  e.diagnostics().detail.find("invalidated") != std::string::npos ||
                                  what.find("can no longer get changes") != std::string::npos)) {
    throw SlotLost("replication slot \"" + slot + "\" on " + conn_.describe() +
                       " was invalidated by the server (it held more WAL than max_slot_wal_keep_size): " + what,
                   slot, SlotLost::Reason::invalidated);
  }
  throw e;
}

void ReplicationConnection::drop_slot(const std::string& name) {
  require_slot_name(name);
  try {
    conn_.exec("DROP_REPLICATION_SLOT " + name);
  } catch (const pg::Error& e) {
    throw_slot_error(e, name);
  }
}

void ReplicationConnection::start(const std::string& slot, Lsn from, const PluginOptions& options) {
  require_slot_name(slot);
  std::string sql = "START_REPLICATION SLOT " + slot + " LOGICAL " + from.str();
  if (!options.empty()) {
    sql += " (";
    for (size_t i = 0; i < options.size(); ++i) {
      if (i) sql += ", ";
      sql += pg::ident(options[i].first) + " " + conn_.literal(options[i].second);
    }
    sql += ")";
  }
  pg::Result r(PQexec(conn_.raw(), sql.c_str()));
  if (!r.raw() || PQresultStatus(r.raw()) != PGRES_COPY_BOTH) {
    pg::Error e = conn_.error_from(r.raw(), "START_REPLICATION failed on " + conn_.describe());
    throw_slot_error(e, slot);
  }
  streaming_ = true;
  received_ = from;
  last_status_ = Clock::now();
}

void ReplicationConnection::handle_keepalive(const char* buf, int len) {
  // 'k', WAL end (8), send time (8), reply requested (1)
  if (len < 18) throw pg::Error("malformed keepalive from " + conn_.describe(), {}, false);
  server_end_ = std::max(server_end_, Lsn{read_u64(buf + 1)});
  if (buf[17]) send_status();
}

std::optional<XLogData> ReplicationConnection::read(std::chrono::milliseconds timeout, Lsn until) {
  if (!streaming_) throw std::logic_error("ReplicationConnection::read before start()");
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    pg::throw_if_interrupted();  // SIGINT/SIGTERM: stop reading; nothing is confirmed
    char* raw = nullptr;
    int n = PQgetCopyData(conn_.raw(), &raw, /*async=*/1);
    if (n > 0) {
      std::unique_ptr<char, decltype(&PQfreemem)> buf(raw, &PQfreemem);
      if (buf.get()[0] == 'w') {
        // 'w', WAL start (8), WAL end (8), send time (8), data
        if (n < 25) throw pg::Error("malformed XLogData from " + conn_.describe(), {}, false);
        XLogData d{Lsn{read_u64(buf.get() + 1)}, Lsn{read_u64(buf.get() + 9)},
                   std::string(buf.get() + 25, static_cast<size_t>(n - 25))};
        received_ = std::max(received_, d.wal_start);
        maybe_send_periodic_status();
        return d;
      }
      if (buf.get()[0] == 'k') {
        handle_keepalive(buf.get(), n);
        if (until.valid() && server_end_ >= until) return std::nullopt;
      }
      continue;  // other message types are not sent to a logical client; ignored
    }
    if (n == -1) {  // the server ended the stream: its error, if any, follows
      streaming_ = false;
      pg::Result r(PQgetResult(conn_.raw()));
      if (!r.raw() || PQresultStatus(r.raw()) != PGRES_FATAL_ERROR) {
        // Ended without an error: a walsender does that to a logical stream this client never ends only when
        // its server shuts down (a restart, fast or smart): a lost connection, retried as one.
        throw pg::Error::connection_loss("replication stream ended on " + conn_.describe() +
                                         ": the server is shutting down");
      }
      throw conn_.error_from(r.raw(), "replication stream ended on " + conn_.describe());
    }
    if (n == -2) {
      streaming_ = false;
      throw conn_.error_from(nullptr, "replication stream failed on " + conn_.describe());
    }
    maybe_send_periodic_status();
    auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now), status_interval);
    pollfd p{PQsocket(conn_.raw()), POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(std::max<int64_t>(wait.count(), 1)));
    if (rc < 0 && errno != EINTR) throw conn_.error_from(nullptr, "waiting for the replication stream failed");
    if (!PQconsumeInput(conn_.raw())) {
      streaming_ = false;
      throw conn_.error_from(nullptr, "replication stream lost on " + conn_.describe());
    }
  }
}

void ReplicationConnection::send_status(bool reply_requested) {
  if (!streaming_) return;
  // 'r', written, flushed, applied (8 each), send time (8), reply requested (1).
  // Only `confirmed_` is reported as flushed and applied: the slot releases
  // nothing the caller has not committed.
  std::string msg(1, 'r');
  put_u64(msg, std::max(received_, confirmed_).value);
  put_u64(msg, confirmed_.value);
  put_u64(msg, confirmed_.value);
  put_u64(msg, static_cast<uint64_t>(now_postgres_us()));
  msg.push_back(reply_requested ? 1 : 0);
  if (PQputCopyData(conn_.raw(), msg.data(), static_cast<int>(msg.size())) != 1 || PQflush(conn_.raw()) != 0) {
    throw conn_.error_from(nullptr, "cannot send a status update to " + conn_.describe());
  }
  last_status_ = Clock::now();
}

void ReplicationConnection::maybe_send_periodic_status() {
  if (Clock::now() - last_status_ >= status_interval) send_status();
}

void ReplicationConnection::confirm(Lsn flushed) {
  if (flushed <= confirmed_) return;
  confirmed_ = flushed;
  send_status();
}

}  // namespace stagesync::logical
