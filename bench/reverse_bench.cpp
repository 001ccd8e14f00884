#include "reverse_bench.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "cluster/local_cluster.h"
#include "demo/reference_data.h"
#include "pg/connection.h"
#include "support/tcp_proxy.h"

extern char** environ;

namespace stagesync::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Measure {
  double seconds = 0;
  long rss_kb = 0;
  int64_t target_trips = 0, desktop_trips = 0;
  int64_t desktop_rows = 0;
};

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

class ReverseBench {
 public:
  explicit ReverseBench(const std::string& stagesync)
      : stagesync_(stagesync), desktop_("reverse-bench-desktop"), cloud_("reverse-bench-cloud") {}

  // Fresh databases; `rows` mobile work diary rows on the cloud side.
  void prepare(int64_t rows) {
    ++round_;
    std::string db = "r" + std::to_string(round_);
    desktop_.create_database(db);
    cloud_.create_database(db);
    pg::Connection d(pg::Endpoint{desktop_.conninfo(db), "", "reverse_bench", 10});
    pg::Connection c(pg::Endpoint{cloud_.conninfo(db), "", "reverse_bench", 10});
    for (const auto& sql : demo::desktop_schema_sql()) d.exec(sql);
    for (const auto& sql : demo::cloud_schema_sql()) c.exec(sql);
    c.exec(
        "INSERT INTO workdiary (staff_id, client_id, job_id, task_id, date, timefrom, timeto, minutes, tasknotes, "
        "source) SELECT 1 + g % 16, 1 + g % 700, 1 + g % 20000, 1 + g % 180, date '2025-01-01' + g % 365, "
        "time '08:00' + (g % 20) * interval '30 minutes', time '08:30' + (g % 20) * interval '30 minutes', 30, "
        "'Arbeitsbericht Nr. ' || g || ' – Prüfung der Unterlagen', 'M' FROM generate_series(1, " +
        std::to_string(rows) + ") g");
    c.exec("ANALYZE");
    target_proxy_ = std::make_unique<testing::TcpProxy>(cloud_.port());
    desktop_proxy_ = std::make_unique<testing::TcpProxy>(desktop_.port());
    config_ = desktop_.directory() + "/reverse-bench-" + db + ".yaml";
    std::ofstream(config_) << demo::demo_config_yaml(
        "postgresql://postgres@127.0.0.1:" + std::to_string(desktop_proxy_->port()) + "/" + db,
        "postgresql://postgres@127.0.0.1:" + std::to_string(target_proxy_->port()) + "/" + db);
    db_ = db;
  }

  Measure run() {
    target_proxy_->reset_counters();
    desktop_proxy_->reset_counters();
    std::vector<std::string> args = {stagesync_, "reverse", "--config", config_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string log = desktop_.directory() + "/reverse-bench.out";
    posix_spawn_file_actions_t files;
    posix_spawn_file_actions_init(&files);
    posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&files, 1, 2);
    auto start = Clock::now();
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&files);
    if (rc != 0) throw std::runtime_error("cannot start " + stagesync_ + ": " + std::strerror(rc));
    int status = 0;
    rusage usage{};
    while (wait4(pid, &status, 0, &usage) < 0) {
      if (errno != EINTR) throw std::runtime_error(std::string("wait4: ") + std::strerror(errno));
    }
    Measure m;
    m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    m.rss_kb = usage.ru_maxrss;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::ifstream in(log);
      std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      throw std::runtime_error("stagesync reverse failed (wait status " + std::to_string(status) + "):\n" + output);
    }
    m.target_trips = target_proxy_->round_trips();
    m.desktop_trips = desktop_proxy_->round_trips();
    pg::Connection d(pg::Endpoint{desktop_.conninfo(db_), "", "reverse_bench", 10});
    m.desktop_rows = d.exec("SELECT count(*) FROM workdiary").int64(0, 0);
    return m;
  }

 private:
  std::string stagesync_;
  cluster::LocalCluster desktop_;
  cluster::LocalCluster cloud_;
  std::unique_ptr<testing::TcpProxy> target_proxy_, desktop_proxy_;
  std::string config_, db_;
  int round_ = 0;
};

}  // namespace

int reverse_bench(const std::string& stagesync, int repeat, bool markdown) {
  try {
    std::cerr << "starting a desktop and a cloud server...\n";
    ReverseBench bench(stagesync);
    struct Row {
      std::string name;
      int64_t rows;
      std::vector<Measure> m;
    };
    std::vector<Row> table = {{"reverse, 10,000 new mobile rows", 10000, {}},
                              {"reverse, no change (10,000 copied)", 10000, {}},
                              {"reverse, 100,000 new mobile rows", 100000, {}},
                              {"reverse, no change (100,000 copied)", 100000, {}}};
    bool ok = true;
    for (int r = 0; r < repeat; ++r) {
      for (size_t i = 0; i < table.size(); i += 2) {
        std::cerr << "round " << r + 1 << ": " << table[i].rows << " rows\n";
        bench.prepare(table[i].rows);
        table[i].m.push_back(bench.run());
        table[i + 1].m.push_back(bench.run());
        ok = ok && table[i].m.back().desktop_rows == table[i].rows &&
             table[i + 1].m.back().desktop_rows == table[i].rows;
      }
    }
    std::string sep = markdown ? " | " : "  ";
    std::cout << (markdown ? "| " : "") << "variant" << sep << "wall s (median)" << sep << "peak RSS MB" << sep
              << "round trips target + desktop" << sep << "desktop rows after" << (markdown ? " |" : "") << "\n";
    if (markdown) std::cout << "|---|---|---|---|---|\n";
    for (auto& row : table) {
      std::vector<double> s;
      long rss = 0;
      for (const auto& m : row.m) {
        s.push_back(m.seconds);
        rss = std::max(rss, m.rss_kb);
      }
      std::sort(s.begin(), s.end());
      const Measure& last = row.m.back();
      std::cout << (markdown ? "| " : "") << row.name << sep << fixed(s[s.size() / 2], 2) << sep
                << fixed(static_cast<double>(rss) / 1024, 1) << sep << last.target_trips << " + " << last.desktop_trips
                << sep << last.desktop_rows << (markdown ? " |" : "") << "\n";
    }
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "reverse bench failed: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace stagesync::bench
