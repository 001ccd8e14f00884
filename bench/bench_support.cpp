#include "bench_support.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>

#include "demo/reference_data.h"

extern char** environ;

namespace stagesync::bench {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "?" : one;
}

namespace {

// Starts `args` (args[0] the executable) with standard output and error into the file `log`.
pid_t spawn_logged(std::vector<std::string> args, const std::string& log) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&files, 1, 2);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
  return pid;
}

}  // namespace

std::string default_stagesync() {
  return (std::filesystem::canonical("/proc/self/exe").parent_path().parent_path() / "stagesync").string();
}

Args::Args(int argc, char** argv, std::function<void(const std::string&)> usage)
    : argc_(argc), argv_(argv), usage_(std::move(usage)) {}

bool Args::next(std::string& arg) {
  if (++i_ >= argc_) return false;
  arg = current_ = argv_[i_];
  return true;
}

std::string Args::value() {
  if (i_ + 1 >= argc_) usage_(current_ + " needs a value");
  return argv_[++i_];
}

ChildRun run_child(const std::vector<std::string>& args, const std::string& log) {
  // A child's own ru_maxrss starts at its parent's RSS (the child ran in, or
  // as a copy of, the parent's memory before its exec), so the benchmark's
  // own memory would be reported. GNU time's child is forked from time's
  // small process: its peak is the command's.
  const std::string time = "/usr/bin/time";
  std::string rss_file = log + ".rss";
  bool timed = access(time.c_str(), X_OK) == 0;
  std::vector<std::string> copy = args;
  if (timed) copy.insert(copy.begin(), {time, "-f", "%M", "-o", rss_file});
  auto start = Clock::now();
  pid_t pid = spawn_logged(copy, log);
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
  }
  ChildRun run{since(start), usage.ru_maxrss};
  if (timed) {
    long kb = 0;
    std::ifstream rss(rss_file);
    // GNU time writes "Command exited with non-zero status N" first when the command fails.
    for (std::string line; std::getline(rss, line);) {
      if (!line.empty() && std::isdigit(static_cast<unsigned char>(line[0]))) kb = std::stol(line);
    }
    run.max_rss_kb = kb;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string command;
    for (size_t i = 1; i < args.size(); ++i) command += (i > 1 ? " " : "") + args[i];
    throw std::runtime_error("stagesync " + command + " failed (wait status " + std::to_string(status) + "):\n" +
                             output);
  }
  return run;
}

BackgroundChild::BackgroundChild(const std::vector<std::string>& args, const std::string& log)
    : pid_(spawn_logged(args, log)) {}

BackgroundChild::~BackgroundChild() {
  if (status_ < 0) stop(SIGKILL, 5);
}

bool BackgroundChild::running() {
  if (status_ >= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) status_ = status;
  return status_ < 0;
}

long BackgroundChild::peak_rss_kb() const {
  if (status_ >= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

int BackgroundChild::stop(int signal, double grace) {
  if (!running()) return status_;
  kill(pid_, signal);
  auto deadline = Clock::now() + std::chrono::duration<double>(grace);
  while (running() && Clock::now() < deadline) usleep(20000);
  if (running()) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = status;
  }
  return status_;
}

pg::Connection connect(const cluster::LocalCluster& server, const std::string& db, const std::string& application) {
  return pg::Connection(pg::Endpoint{server.conninfo(db), "", application, 10});
}

void fresh_cloud(const cluster::LocalCluster& target, const std::string& db, const std::string& application) {
  {
    pg::Connection admin = connect(target, "postgres", application);
    admin.exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    admin.exec("CREATE DATABASE " + db);
  }
  pg::Connection cloud = connect(target, db, application);
  for (const auto& sql : demo::cloud_schema_sql()) cloud.exec(sql);
}

void checkpoint(const std::vector<const cluster::LocalCluster*>& servers, const std::string& application) {
  for (const cluster::LocalCluster* s : servers) connect(*s, "postgres", application).exec("CHECKPOINT");
}

void print_table(const std::vector<std::vector<std::string>>& table, bool markdown) {
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& row : table)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (size_t r = 0; r < table.size(); ++r) {
    std::string line = markdown ? "|" : "";
    for (size_t c = 0; c < table[r].size(); ++c) {
      std::string cell = table[r][c];
      cell.resize(width[c], ' ');
      line += markdown ? " " + cell + " |" : cell + "  ";
    }
    std::cout << line << "\n";
    if (markdown && r == 0) {
      std::string rule = "|";
      for (size_t c = 0; c < width.size(); ++c) {
        rule += c == 0 ? ":" + std::string(width[c] + 1, '-') + "|" : std::string(width[c] + 1, '-') + ":|";
      }
      std::cout << rule << "\n";
    }
  }
}

}  // namespace stagesync::bench
