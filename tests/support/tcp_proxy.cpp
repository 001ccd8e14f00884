#include "support/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <string_view>

namespace stagesync::testing {
namespace {

int connect_local(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// A simple-protocol Query message for COMMIT: 'Q', length, "COMMIT\0".
bool is_commit(std::string_view data) { return data.find(std::string_view("COMMIT\0", 7)) != std::string_view::npos; }

// The protocol's Terminate message: the client closes, it waits for nothing.
constexpr std::string_view kTerminate("X\0\0\0\4", 5);

// A delayed direction stops reading while this much is in flight, so memory
// stays bounded; 64 MB per 100 ms is still far more than an internet link.
constexpr size_t kMaxInFlight = size_t{64} << 20;

}  // namespace

// One connection over the slow link: the pump thread reads both sockets and
// queues each chunk stamped with its due time; one writer thread per
// direction delivers the chunks in order when they are due.
struct TcpProxy::Link {
  using Clock = std::chrono::steady_clock;
  struct Chunk {
    Clock::time_point due;
    std::string data;
    bool last = false;  // EOF or cut: deliver what came before, then close both sides
  };
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Chunk> chunks;
    std::atomic<size_t> bytes{0};
  };

  int client, server;
  Queue up, down;  // up: client -> server
  std::atomic<bool> closed{false};
  std::atomic<bool> awaiting{true};  // server data reached the client since its last burst

  Link(int c, int s) : client(c), server(s) {}

  void push(Queue& q, Clock::time_point due, std::string data, bool last) {
    size_t n = data.size();
    {
      std::lock_guard<std::mutex> lock(q.mu);
      q.chunks.push_back(Chunk{due, std::move(data), last});
    }
    q.bytes += n;
    q.cv.notify_all();
  }
  // Ends the connection: both writers stop, the pump's poll sees the hangup.
  void close_both() {
    closed = true;
    shutdown(client, SHUT_RDWR);
    shutdown(server, SHUT_RDWR);
    for (Queue* q : {&up, &down}) {
      std::lock_guard<std::mutex> lock(q->mu);
      q->cv.notify_all();
    }
  }
};

TcpProxy::TcpProxy(int upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    throw std::runtime_error("proxy: cannot listen");
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TcpProxy::~TcpProxy() { stop(); }

void TcpProxy::cut_after_bytes(int64_t bytes, int connections) {
  cut_bytes_ = bytes;
  cut_connections_ = connections;
}

int TcpProxy::cut_open() {
  std::lock_guard<std::mutex> lock(open_mu_);
  // shutdown(), not close(): the pump sees the hangup on both sides and closes them itself (close_link()).
  for (const auto& [client, server] : open_) {
    shutdown(client, SHUT_RDWR);
    shutdown(server, SHUT_RDWR);
    ++cuts_;
  }
  return static_cast<int>(open_.size());
}

void TcpProxy::close_link(int client, int server) {
  {
    std::lock_guard<std::mutex> lock(open_mu_);
    open_.erase({client, server});
  }
  close(client);
  close(server);
}

void TcpProxy::stop() {
  if (stopping_.exchange(true)) return;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  if (acceptor_.joinable()) acceptor_.join();
  // Join outside the lock: a pump still forwarding its last bytes takes mu_
  // in should_hold(), and joining it while holding mu_ would never return.
  std::vector<std::thread> pumps;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pumps.swap(pumps_);
  }
  for (auto& t : pumps)
    if (t.joinable()) t.join();
}

void TcpProxy::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    int server = connect_local(upstream_port_);
    if (server < 0) {
      close(client);
      continue;
    }
    int64_t cut_at = 0;
    if (cut_connections_ > 0) {
      --cut_connections_;
      cut_at = cut_bytes_;
    }
    ++connections_;
    {
      std::lock_guard<std::mutex> open_lock(open_mu_);
      open_.insert({client, server});
    }
    std::chrono::milliseconds delay(delay_ms_.load());
    std::lock_guard<std::mutex> lock(mu_);
    if (delay.count() > 0) {
      pumps_.emplace_back([this, client, server, cut_at, delay] { pump_delayed(client, server, cut_at, delay); });
    } else {
      pumps_.emplace_back([this, client, server, cut_at] { pump(client, server, cut_at); });
    }
  }
}

bool TcpProxy::should_hold(std::string_view data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!count_text_.empty() && data.find(count_text_) != std::string_view::npos) ++sent_;
  if (hold_left_ <= 0 || data.find(hold_text_) == std::string_view::npos) return false;
  return --hold_left_ == 0;
}

TcpProxy::Verdict TcpProxy::judge(int from, const char* buf, size_t len, int64_t moved, int64_t cut_at) {
  if (cut_at > 0 && moved + static_cast<int64_t>(len) >= cut_at) {
    ++cuts_;
    return {static_cast<size_t>(cut_at - moved), true};  // part of the message, then the cut
  }
  std::string_view data(buf, len);
  if (from != 0) {
    // AfterForwarding: the server's answer to the COMMIT (its CommandComplete
    // tag) is the proof that the commit landed; the client never gets it.
    if (answer_cut_ && data.find(std::string_view("COMMIT\0", 7)) != std::string_view::npos) {
      answer_cut_ = false;
      ++cuts_;
      return {0, true};
    }
    return {len, false};
  }
  if (should_hold(data)) {
    held_ = true;
    while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return {0, true};
  }
  if (commit_cut_ != CommitCut::None && is_commit(data)) {
    CommitCut how = commit_cut_.exchange(CommitCut::None);
    if (how == CommitCut::AfterForwarding) {
      answer_cut_ = true;  // forwarded; the link is cut when the server answers it
      return {len, false};
    }
    if (how != CommitCut::None) {
      ++cuts_;
      return {0, true};
    }
  }
  return {len, false};
}

void TcpProxy::count_up(std::string_view chunk, std::atomic<bool>& awaiting) {
  if (!awaiting.exchange(false)) return;  // the same burst, still arriving
  if (chunk == kTerminate) return;
  ++round_trips_;
}

void TcpProxy::pump(int client, int server, int64_t cut_at) {
  pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
  char buf[65536];
  int64_t moved = 0;
  bool open = true;
  std::atomic<bool> awaiting{true};
  while (open && !stopping_) {
    if (poll(fds, 2, 100) <= 0) continue;
    for (int i = 0; i < 2 && open; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
      if (n <= 0) {
        open = false;
        break;
      }
      int to = i == 0 ? server : client;
      size_t len = static_cast<size_t>(n);
      Verdict v = judge(i, buf, len, moved, cut_at);
      if (v.close) {
        write_all(to, buf, v.forward);
        open = false;
        break;
      }
      moved += n;
      bytes_ += n;
      if (i == 0) {
        count_up(std::string_view(buf, len), awaiting);
        bytes_up_ += n;
      } else {
        awaiting = true;  // before the write: the client cannot answer data it has not got
        bytes_down_ += n;
      }
      if (!write_all(to, buf, len)) open = false;
    }
  }
  close_link(client, server);
}

// pump() over a slow link. The fault features act where pump() acts, when
// the client's bytes are read; what was read before a cut is still delivered,
// late, and then both sides are closed.
void TcpProxy::pump_delayed(int client, int server, int64_t cut_at, std::chrono::milliseconds delay) {
  Link link(client, server);
  auto writer = [this, &link](Link::Queue& q, int to, bool down) {
    for (;;) {
      std::unique_lock<std::mutex> lock(q.mu);
      q.cv.wait(lock, [&] { return link.closed || !q.chunks.empty(); });
      if (link.closed) return;
      if (Link::Clock::now() < q.chunks.front().due) {
        q.cv.wait_until(lock, q.chunks.front().due);
        continue;
      }
      Link::Chunk c = std::move(q.chunks.front());
      q.chunks.pop_front();
      lock.unlock();
      q.bytes -= c.data.size();
      int64_t n = static_cast<int64_t>(c.data.size());
      bytes_ += n;
      if (down) {
        link.awaiting = true;  // before the write, as in pump()
        bytes_down_ += n;
      } else {
        bytes_up_ += n;
      }
      if ((!c.data.empty() && !write_all(to, c.data.data(), c.data.size())) || c.last) {
        link.close_both();
        return;
      }
    }
  };
  std::thread up([&] { writer(link.up, server, false); });
  std::thread down([&] { writer(link.down, client, true); });

  pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
  Link::Queue* queues[2] = {&link.up, &link.down};
  char buf[65536];
  int64_t moved = 0;
  bool open = true;
  while (open && !stopping_ && !link.closed) {
    bool full = false;
    for (int i = 0; i < 2; ++i) {
      fds[i].events = queues[i]->bytes < kMaxInFlight ? POLLIN : 0;
      full = full || fds[i].events == 0;
    }
    if (poll(fds, 2, full ? 5 : 100) <= 0) continue;
    for (int i = 0; i < 2 && open; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      Link::Queue& q = *queues[i];
      auto due = Link::Clock::now() + delay;
      ssize_t n = recv(fds[i].fd, buf, sizeof buf, 0);
      if (n <= 0) {
        link.push(q, due, {}, true);
        open = false;
        break;
      }
      size_t len = static_cast<size_t>(n);
      Verdict v = judge(i, buf, len, moved, cut_at);
      if (v.close) {
        link.push(q, due, std::string(buf, v.forward), true);  // what was read before a cut still arrives, late
        open = false;
        break;
      }
      moved += n;
      if (i == 0) count_up(std::string_view(buf, len), link.awaiting);
      link.push(q, due, std::string(buf, len), false);
    }
  }
  // The writers end at the last chunk; on stop(), right away.
  if (stopping_) link.close_both();
  up.join();
  down.join();
  close_link(client, server);
}

}  // namespace stagesync::testing
