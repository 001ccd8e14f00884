// A TCP proxy for fault injection, between stagesync and a PostgreSQL server
// on 127.0.0.1. It forwards bytes both ways and can cut a connection:
//   - after a number of bytes (both directions counted), for the first N connections;
//   - when the client sends COMMIT: before forwarding it (the server never
//     sees it) or right after (the server commits; the client never hears).
// Runs its own thread; stop() or the destructor closes everything.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
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
  // Cut the next connection that sends COMMIT, as given.
  void cut_on_commit(CommitCut how) { commit_cut_ = how; }
  int cuts() const { return cuts_; }
  // Bytes forwarded so far, both directions, all connections.
  int64_t bytes() const { return bytes_; }
  void stop();

 private:
  void accept_loop();
  void pump(int client, int server, int64_t cut_at);
  bool should_hold(std::string_view data);

  int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> cut_bytes_{0};
  std::atomic<int> cut_connections_{0};
  std::atomic<CommitCut> commit_cut_{CommitCut::None};
  std::atomic<int> cuts_{0};
  std::atomic<int64_t> bytes_{0};
  std::string hold_text_;
  int hold_left_ = 0;
  std::atomic<bool> held_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> pumps_;
};

}  // namespace stagesync::testing
