#include "support/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
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

}  // namespace

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
    std::lock_guard<std::mutex> lock(mu_);
    pumps_.emplace_back([this, client, server, cut_at] { pump(client, server, cut_at); });
  }
}

bool TcpProxy::should_hold(std::string_view data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (hold_left_ <= 0 || data.find(hold_text_) == std::string_view::npos) return false;
  return --hold_left_ == 0;
}

void TcpProxy::pump(int client, int server, int64_t cut_at) {
  pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
  char buf[65536];
  int64_t moved = 0;
  bool open = true;
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
      if (cut_at > 0 && moved + n >= cut_at) {
        write_all(to, buf, static_cast<size_t>(cut_at - moved));  // part of the message, then the cut
        ++cuts_;
        open = false;
        break;
      }
      if (i == 0 && should_hold(std::string_view(buf, len))) {
        held_ = true;
        while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        open = false;
        break;
      }
      if (i == 0 && commit_cut_ != CommitCut::None && is_commit(std::string_view(buf, len))) {
        CommitCut how = commit_cut_.exchange(CommitCut::None);
        if (how == CommitCut::AfterForwarding) write_all(to, buf, len);
        if (how != CommitCut::None) {
          ++cuts_;
          open = false;
          break;
        }
      }
      moved += n;
      bytes_ += n;
      if (!write_all(to, buf, len)) open = false;
    }
  }
  close(client);
  close(server);
}

}  // namespace stagesync::testing
