// A logical replication connection to the desktop (libpq with
// `replication=database`): the walsender protocol's commands and the COPY BOTH
// stream of decoded changes.
//
// - IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT ... LOGICAL <plugin> with an
//   exported snapshot (valid while this connection stays open and runs no
//   other command: use it at once, logical/exported_snapshot.h),
//   DROP_REPLICATION_SLOT, START_REPLICATION.
// - read(): the next XLogData message, waiting on the socket (poll) at most
//   the given time; never a busy loop. Primary keepalives are handled inside:
//   answered when the server asks, and their WAL end remembered.
// - Standby status updates report a flush position ONLY as far as the caller
//   has confirmed (confirm(), after its target committed): without a call the
//   slot keeps everything and a reconnect re-sends the same changes. Status
//   updates also go out every `status_interval` so wal_sender_timeout never
//   ends a quiet stream.
// - A slot that does not exist or was invalidated is logical::SlotLost;
//   any other server or libpq error is pg::Error.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "logical/lsn.h"
#include "pg/connection.h"

namespace stagesync::logical {

struct SystemIdentity {
  std::string system_id;
  int timeline = 0;
  Lsn wal_position;  // the server's current flush position
  std::string database;
};

struct CreatedSlot {
  std::string name;
  Lsn consistent_point;       // the first change the slot will send commits after this
  std::string snapshot_name;  // empty unless the snapshot was exported
  std::string plugin;
};

// One XLogData message: a piece of the plugin's output.
struct XLogData {
  Lsn wal_start;  // for test_decoding: BEGIN = the transaction's first LSN,
                  // a change = its record, COMMIT = the end of the commit record
  Lsn wal_end;
  std::string data;
};

using PluginOptions = std::vector<std::pair<std::string, std::string>>;

class ReplicationConnection {
 public:
  // Connects with replication=database (whatever the endpoint says about it).
  // Throws pg::Error (connection flavoured) like pg::Connection.
  explicit ReplicationConnection(pg::Endpoint endpoint);
  ReplicationConnection(ReplicationConnection&&) noexcept = default;
  ReplicationConnection& operator=(ReplicationConnection&&) noexcept = default;

  SystemIdentity identify_system();
  CreatedSlot create_slot(const std::string& name, const std::string& plugin, bool export_snapshot = true);
  // Throws SlotLost(missing) when there is no such slot.
  void drop_slot(const std::string& name);
  // From `from`, or where the slot was last confirmed when that is later
  // (0/0: from the slot's confirmed position). Throws SlotLost.
  void start(const std::string& slot, Lsn from, const PluginOptions& options);
  bool streaming() const { return streaming_; }

  // The next XLogData within `timeout`, or nullopt when none arrived in time,
  // or as soon as a keepalive shows the server's WAL end at or past `until`
  // (when valid): everything the stream holds before it has arrived.
  // Throws pg::Error when the stream ends or the connection is lost (a
  // stream the server ended without an error, at its shutdown, is a lost
  // connection: transient), and
  // pg::Interrupted after SIGINT/SIGTERM. A caller busy elsewhere (applying
  // a batch) calls read() or send_status() at least every half
  // wal_sender_timeout (default 60 s), or the server ends the stream.
  std::optional<XLogData> read(std::chrono::milliseconds timeout, Lsn until = {});

  // The caller's target has committed everything up to `flushed` (a
  // transaction's end LSN, or a keepalive's WAL end while no transaction is
  // open): the slot may release it. Sends a status update now. Positions at
  // or below the last confirmed one are ignored (never moves back).
  void confirm(Lsn flushed);
  // Sends a standby status update with the current positions.
  void send_status(bool reply_requested = false);

  Lsn received() const { return received_; }          // the last XLogData's start
  Lsn confirmed() const { return confirmed_; }        // the last confirmed flush (0/0: none)
  Lsn server_wal_end() const { return server_end_; }  // the last keepalive's WAL end
  // How far the stream has shown the server to be: every transaction that
  // committed before it has arrived (the later of the two above).
  Lsn position() const { return std::max(received_, server_end_); }
  std::chrono::milliseconds status_interval{10000};

  pg::Connection& connection() { return conn_; }
  std::string describe() const { return conn_.describe(); }

 private:
  // A server error at START/DROP: SlotLost when it says the slot is gone.
  [[noreturn]] void throw_slot_error(const pg::Error& e, const std::string& slot) const;
  void handle_keepalive(const char* buf, int len);
  void maybe_send_periodic_status();

  pg::Connection conn_;
  bool streaming_ = false;
  Lsn received_;
  Lsn confirmed_;
  Lsn server_end_;
  std::chrono::steady_clock::time_point last_status_{};
};

}  // namespace stagesync::logical
