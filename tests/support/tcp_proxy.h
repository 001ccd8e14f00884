// A TCP proxy between stagesync and a PostgreSQL server on 127.0.0.1, for
// fault injection (tests) and for a simulated slow link (tests and
// bench/sync_bench). It forwards bytes both ways and can:
//   - cut a connection after a number of bytes (both directions counted), for
//     the first N connections;
//   - cut it when the client sends COMMIT: before forwarding it (the server
//     never sees it) or right after (the server commits; the client never hears);
//   - delay every byte by a fixed time each way (set_delay), no bandwidth limit;
//   - cut every connection open now (cut_open), as a NAT or a cloud proxy that
//     drops idle connections does;
//   - count round trips and bytes each way, and the client's messages holding a text.
// Runs its own threads; stop() or the destructor closes everything.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace stagesync::testing {

class TcpProxy {
 public:
  enum class CommitCut { None, BeforeForwarding, AfterForwarding };

  explicit TcpProxy(int upstream_port);
  ~TcpProxy();

  int port() const { return port_; }
  // Cut each of the next `connections` connections after `bytes` bytes (0: no cut).
  void cut_after_bytes(int64_t bytes, int connections);
  // Stop forwarding (hold the connection open, silent) when the client sends
  // `text` for the `occurrence`-th time: the client is then frozen at that
  // exact point, for a test to kill it there. held() tells when it happened.
  void hold_on(const std::string& text, int occurrence) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_text_ = text;
    hold_left_ = occurrence;
  }
  bool held() const { return held_; }
  // Count the client's messages holding `text` from now on (a chunk read
  // from the client counts once: `text` should be part of one statement).
  void count_sent(const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    count_text_ = text;
    sent_ = 0;
  }
  int sent() const { return sent_; }
  // Cut the next connection that sends COMMIT: before forwarding it, or
  // (AfterForwarding) once the server has answered it, so the commit surely
  // landed and the client never hears of it.
  void cut_on_commit(CommitCut how) {
    commit_cut_ = how;
    answer_cut_ = false;
  }
  int cuts() const { return cuts_; }
  // Close both sides of every connection open now (each counts as a cut).
  // Returns how many were cut; connections accepted later are not affected.
  int cut_open();
  // Connections open now: a connection is closed once both its sides are, after what either
  // side sent before its end was delivered to the other.
  int open_connections() {
    std::lock_guard<std::mutex> lock(open_mu_);
    return static_cast<int>(open_.size());
  }
  // Bytes forwarded so far, both directions, all connections (never reset).
  int64_t bytes() const { return bytes_; }

  // A slow link: every byte read from either side is delivered `one_way`
  // later (a 50 ms round trip is 25 ms each way), order kept per direction,
  // no bandwidth limit. Applies to connections accepted after the call; 0
  // (the default) forwards directly, as without this feature.
  void set_delay(std::chrono::milliseconds one_way) { delay_ms_ = one_way.count(); }

  // Counters, summed over all connections since the last reset_counters().
  // A round trip is a client->server burst that follows server->client data
  // delivered to the client, i.e. each time the client had to wait for the
  // server; the first burst of a connection counts as one. A burst that is only
  // the protocol's Terminate message is not counted (the client does not wait
  // for an answer, it closes).
  int64_t round_trips() const { return round_trips_; }
  int64_t bytes_up() const { return bytes_up_; }      // client -> server
  int64_t bytes_down() const { return bytes_down_; }  // server -> client
  int connections() const { return connections_; }
  void reset_counters() {
    round_trips_ = 0;
    bytes_up_ = 0;
    bytes_down_ = 0;
    connections_ = 0;
  }

  void stop();

 private:
  struct Link;  // one delayed connection (tcp_proxy.cpp)

  void accept_loop();
  void pump(int client, int server, int64_t cut_at);
  void pump_delayed(int client, int server, int64_t cut_at, std::chrono::milliseconds delay);
  bool should_hold(std::string_view data);
  // What the fault features (cut, hold, commit cut) make of `len` bytes read
  // from side `from` (0: the client) after `moved` bytes: forward the first
  // `forward` of them, and then close both sides when `close`.
  struct Verdict {
    size_t forward;
    bool close;
  };
  Verdict judge(int from, const char* buf, size_t len, int64_t moved, int64_t cut_at);
  // Counts a chunk the client sent; `awaiting` is set when server data was
  // delivered to the client since its last burst.
  void count_up(std::string_view chunk, std::atomic<bool>& awaiting);
  // A pump's connection ended: no longer cut_open()'s to shut, then closed.
  void close_link(int client, int server);

  int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> cut_bytes_{0};
  std::atomic<int> cut_connections_{0};
  std::atomic<CommitCut> commit_cut_{CommitCut::None};
  std::atomic<bool> answer_cut_{false};  // AfterForwarding: cut when the server's answer to COMMIT arrives
  std::atomic<int> cuts_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> delay_ms_{0};
  std::atomic<int64_t> round_trips_{0};
  std::atomic<int64_t> bytes_up_{0};
  std::atomic<int64_t> bytes_down_{0};
  std::atomic<int> connections_{0};
  std::string hold_text_;
  int hold_left_ = 0;
  std::string count_text_;
  std::atomic<int> sent_{0};
  std::atomic<bool> held_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> pumps_;
  std::mutex open_mu_;
  std::set<std::pair<int, int>> open_;  // (client, server) sockets of the connections open now
};

}  // namespace stagesync::testing
