#include "support/pooler.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cluster/process.h"

namespace fs = std::filesystem;

namespace stagesync::testing {
namespace {

bool accepts_connections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// Forks pgbouncer in the foreground (so it is our child to stop and reap),
// as the server account when root; it dies with the thread that started it
// (the test's), so a crashed test leaves no pgbouncer behind.
pid_t start_pgbouncer(const std::string& binary, const std::string& ini, const std::string& log,
                      const cluster::RunAs& as) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0) return pid;
  cluster::prepare_child(as, log);
  // After setuid (which clears it): a test process that dies takes pgbouncer with it.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(125);
  execl(binary.c_str(), binary.c_str(), ini.c_str(), static_cast<char*>(nullptr));
  _exit(127);
}

const char* pool_mode(Pooler::Mode mode) {
  switch (mode) {
    case Pooler::Mode::Session:
      return "session";
    case Pooler::Mode::Transaction:
      return "transaction";
    case Pooler::Mode::Statement:
      return "statement";
  }
  return "session";
}

}  // namespace

std::string Pooler::find_binary() {
  if (const char* env = std::getenv("STAGESYNC_PGBOUNCER"); env && *env) return env;
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string d;
    while (std::getline(ss, d, ':'))
      if (!d.empty()) dirs.push_back(d);
  }
  dirs.push_back("/usr/sbin");
  dirs.push_back("/usr/local/sbin");
  for (const auto& d : dirs) {
    std::string candidate = d + "/pgbouncer";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw std::runtime_error(
      "pgbouncer not found (on PATH or in /usr/sbin): install the pgbouncer package (scripts/install-deps.sh) or set "
      "STAGESYNC_PGBOUNCER");
}

Pooler::Pooler(cluster::LocalCluster& server, const Options& options) : options_(options) {
  std::string binary = find_binary();
  std::string tmpl = (fs::temp_directory_path() / "stagesync-pgbouncer-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory for pgbouncer");
  dir_ = tmpl;
  cluster::RunAs as = cluster::RunAs::for_server();
  if (as.switch_user && chown(dir_.c_str(), as.uid, as.gid) != 0) {
    throw std::runtime_error("cannot hand " + dir_ + " to the postgres user");
  }
  // trust still wants the user listed in the auth file.
  std::ofstream(dir_ + "/userlist.txt") << "\"postgres\" \"\"\n";
  std::string ini = dir_ + "/pgbouncer.ini";
  std::string log = dir_ + "/pgbouncer.log";
  for (int attempt = 0;; ++attempt) {
    port_ = cluster::free_port();
    std::ofstream conf(ini, std::ios::trunc);
    conf << "[databases]\n* = host=127.0.0.1 port=" << server.port() << "\n\n[pgbouncer]\n"
         << "listen_addr = 127.0.0.1\nlisten_port = " << port_ << "\nunix_socket_dir =\n"
         << "auth_type = trust\nauth_file = " << dir_ << "/userlist.txt\n"
         << "pool_mode = " << pool_mode(options_.mode) << "\n"
         << "default_pool_size = " << options_.pool_size << "\nmax_client_conn = 200\n"
         << "server_round_robin = " << (options_.round_robin ? 1 : 0) << "\n"
         << "pidfile = " << dir_ << "/pgbouncer.pid\nlogfile = " << log << "\n";
    conf.close();
    pid_ = start_pgbouncer(binary, ini, dir_ + "/stdout.log", as);
    if (pid_ < 0) throw std::runtime_error("cannot fork to start pgbouncer");
    bool exited = false;
    int status = 0;
    for (int i = 0; i < 600; ++i) {  // up to 30 s
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited = true;
        break;
      }
      if (accepts_connections(port_)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!exited) stop();
    pid_ = -1;
    if (attempt >= 2) {
      std::string tail = log_tail();
      std::error_code ec;
      fs::remove_all(dir_, ec);
      throw std::runtime_error("pgbouncer did not start (" + binary + "); its log:\n" + tail);
    }
  }
}

Pooler::~Pooler() {
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void Pooler::stop() noexcept {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  bool reaped = false;
  for (int i = 0; i < 200 && !reaped; ++i) {  // up to 10 s
    reaped = waitpid(pid_, &status, WNOHANG) == pid_;
    if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!reaped) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
}

std::string Pooler::url(const std::string& dbname) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

std::string Pooler::conninfo(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

std::string Pooler::log_tail() const {
  std::string out;
  for (const char* name : {"/stdout.log", "/pgbouncer.log"}) {
    std::ifstream in(dir_ + name);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    for (size_t i = lines.size() > 15 ? lines.size() - 15 : 0; i < lines.size(); ++i) out += lines[i] + "\n";
  }
  return out;
}

}  // namespace stagesync::testing
