// What the benchmarks share: the real stagesync binary run as a child (wall
// time and peak RSS from wait4), medians, the machine's load average and
// result tables printed as text or markdown. docs/performance.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cluster/local_cluster.h"
#include "pg/connection.h"

namespace stagesync::bench {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t);
double median(std::vector<double> v);
// `v` with `decimals` digits after the point.
std::string fixed(double v, int decimals);
// The 1-minute load average: other work on the machine skews every number.
std::string load_average();

// The stagesync binary of this build (beside the bench/ directory the benchmark runs from).
std::string default_stagesync();

// A benchmark's command line, read argument by argument: next() gives each
// one, value() the one after it (a missing value calls `usage` with "<arg>
// needs a value"; `usage` does not return).
class Args {
 public:
  Args(int argc, char** argv, std::function<void(const std::string&)> usage);
  bool next(std::string& arg);
  std::string value();

 private:
  int argc_;
  char** argv_;
  std::function<void(const std::string&)> usage_;
  int i_ = 0;
  std::string current_;
};

struct ChildRun {
  double seconds = 0;
  long max_rss_kb = 0;  // peak RSS of the command (GNU time's %M; without /usr/bin/time, wait4's ru_maxrss)
};

// Runs `args` (args[0] the executable) as a child with standard output and
// error into the file `log`, and waits for it, under /usr/bin/time when
// there is one (its report goes to `log`.rss). A child that does not exit 0
// throws std::runtime_error with its output.
ChildRun run_child(const std::vector<std::string>& args, const std::string& log);

// A child left running while the benchmark measures (`stagesync follow`),
// started as run_child() starts one (output into `log`) but without GNU time:
// its peak RSS is read from /proc (VmHWM, the process's own after its exec)
// while it runs. The destructor kills a child still running.
class BackgroundChild {
 public:
  BackgroundChild(const std::vector<std::string>& args, const std::string& log);
  ~BackgroundChild();
  BackgroundChild(const BackgroundChild&) = delete;
  BackgroundChild& operator=(const BackgroundChild&) = delete;

  // Whether it still runs (a child that exited is reaped here).
  bool running();
  // Peak resident set so far, kB (0 once it exited).
  long peak_rss_kb() const;
  // Sends `signal`, waits up to `grace` seconds, then SIGKILL. Returns the wait status.
  int stop(int signal, double grace);
  // The wait status of a child that exited (-1 while it runs).
  int status() const { return status_; }

 private:
  int pid_ = -1;
  int status_ = -1;
};

// What the link to the target carried during one measurement (all -1 without a proxy).
struct LinkUse {
  int64_t round_trips = -1;
  int64_t bytes_up = -1;
  int64_t bytes_down = -1;
  int connections = -1;
};

// A connection to database `db` of `server`, named `application` in pg_stat_activity.
pg::Connection connect(const cluster::LocalCluster& server, const std::string& db, const std::string& application);
// Drops database `db` of `target` and creates it again with the demo's cloud
// schema (no mobile rows), so that every measurement moves the same rows.
void fresh_cloud(const cluster::LocalCluster& target, const std::string& db, const std::string& application);
// CHECKPOINT on each server: no earlier run's dirty pages are flushed during the next measurement.
void checkpoint(const std::vector<const cluster::LocalCluster*>& servers, const std::string& application);

// Rows of cells, the first row the header; markdown: a GitHub table with the
// first column left-aligned and the others right-aligned.
void print_table(const std::vector<std::vector<std::string>>& table, bool markdown);

}  // namespace stagesync::bench
