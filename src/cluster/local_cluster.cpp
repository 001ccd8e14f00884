#include "cluster/local_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "cluster/process.h"

namespace fs = std::filesystem;

namespace stagesync::cluster {

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("cannot create a socket to find a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot find a free TCP port on 127.0.0.1");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string LocalCluster::find_bindir() {
  if (const char* env = std::getenv("STAGESYNC_PG_BINDIR"); env && *env) return env;
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string v = entry.path().filename().string();
    int version = std::atoi(v.c_str());
    if (version > best_version && fs::exists(entry.path() / "bin" / "initdb")) {
      best_version = version;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty()) {
    throw std::runtime_error(
        "no PostgreSQL server binaries found under /usr/lib/postgresql (install postgresql-15: "
        "scripts/install-deps.sh, or set STAGESYNC_PG_BINDIR)");
  }
  return best;
}

LocalCluster::LocalCluster(const std::string& name_hint) : bindir_(find_bindir()) {
  std::string tmpl = (fs::temp_directory_path() / (name_hint + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory for PostgreSQL");
  dir_ = tmpl;
  RunAs as = RunAs::for_server();
  if (as.switch_user && chown(dir_.c_str(), as.uid, as.gid) != 0) {
    throw std::runtime_error("cannot hand " + dir_ + " to the postgres user");
  }
  std::string log = dir_ + "/initdb.log";
  int rc = run_program({bindir_ + "/initdb", "-D", dir_ + "/data", "-A", "trust", "-U", "postgres", "-E", "UTF8",
                        "--locale=C", "--no-sync"},
                       as, log);
  if (rc != 0) {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    throw std::runtime_error("initdb failed in " + dir_ + ":\n" + ss.str());
  }
  // Settings for a disposable server: durable against process crashes (which
  // the fault tests cause) but not against power loss, and quick to start.
  std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
  conf << "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '" << dir_ << "'\n"
       << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n"
       << "shared_buffers = 128MB\nmax_wal_size = 2GB\nlogging_collector = off\n";
  conf.close();
  for (int attempt = 0;; ++attempt) {
    port_ = free_port();
    try {
      start();
      break;
    } catch (const std::exception&) {
      if (attempt >= 4) throw;
    }
  }
}

LocalCluster::~LocalCluster() {
  if (keep_) return;
  try {
    if (running_) stop("immediate");
  } catch (...) {
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string LocalCluster::conninfo(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + dbname;
}

std::string LocalCluster::url(const std::string& dbname) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

std::string LocalCluster::log_tail() const {
  std::ifstream in(dir_ + "/server.log");
  std::string line, out;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  for (size_t i = lines.size() > 15 ? lines.size() - 15 : 0; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

void LocalCluster::pg_ctl(const std::string& action, const std::string& mode) {
  std::vector<std::string> argv = {bindir_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/server.log", "-w", "-t", "60"};
  if (!mode.empty()) { argv.push_back("-m"); argv.push_back(mode); }
  if (action != "stop") { argv.push_back("-o"); argv.push_back("-p " + std::to_string(port_)); }
  argv.push_back(action);
  int rc = run_program(argv, RunAs::for_server(), dir_ + "/pg_ctl.log");
  if (rc != 0) {
    throw std::runtime_error("pg_ctl " + action + " failed for the server in " + dir_ + "; server log:\n" + log_tail());
  }
}

void LocalCluster::start() {
  pg_ctl("start", "");
  running_ = true;
}

void LocalCluster::stop(const std::string& mode) {
  pg_ctl("stop", mode);
  running_ = false;
}

void LocalCluster::restart(const std::string& mode) {
  pg_ctl("restart", mode);
  running_ = true;
}

void LocalCluster::create_database(const std::string& dbname) {
  int rc = run_program({bindir_ + "/createdb", "-h", "127.0.0.1", "-p", std::to_string(port_), "-U", "postgres", dbname},
                       RunAs{}, dir_ + "/createdb.log");
  if (rc != 0) throw std::runtime_error("createdb " + dbname + " failed (see " + dir_ + "/createdb.log)");
}

}  // namespace stagesync::cluster
