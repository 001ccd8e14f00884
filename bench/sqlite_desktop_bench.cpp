// sqlite_desktop_bench: times demo::write_sqlite_desktop, the reference desktop written as a SQLite file,
// at the given scales and in both journal modes, on a throwaway PostgreSQL server; prints seconds, rows,
// rows/s and the file size. With --keep DIR the files stay there (desktop-<scale>-<journal>.sqlite), for the
// SQLite-source benchmarks.
//
//   sqlite_desktop_bench [--scale 1,10] [--keep DIR]
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cluster/local_cluster.h"
#include "demo/reference_data.h"
#include "demo/sqlite_desktop.h"
#include "pg/connection.h"

using namespace stagesync;

int main(int argc, char** argv) {
  std::vector<double> scales = {1, 10};
  std::string keep;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--scale") {
      scales.clear();
      std::stringstream list(argv[i + 1]);
      for (std::string s; std::getline(list, s, ',');) scales.push_back(std::atof(s.c_str()));
    } else if (flag == "--keep") {
      keep = argv[i + 1];
    } else {
      std::cerr << "usage: sqlite_desktop_bench [--scale 1,10] [--keep DIR]\n";
      return 2;
    }
  }
  try {
    cluster::LocalCluster server("stagesync-sqlite-bench");
    std::string dir = keep.empty() ? server.directory() : keep;
    std::filesystem::create_directories(dir);
    for (double scale : scales) {
      std::string db = "desktop_" + std::to_string(static_cast<int>(scale * 1000));
      server.create_database(db);
      pg::Connection desktop(pg::Endpoint{server.conninfo(db), "", "sqlite_desktop_bench", 10});
      for (const auto& sql : demo::desktop_schema_sql()) desktop.exec(sql);
      for (const auto& sql : demo::desktop_data_sql(scale, 42)) desktop.exec(sql);
      for (const char* journal : {"wal", "delete"}) {
        char name[64];
        std::snprintf(name, sizeof name, "/desktop-%g-%s.sqlite", scale, journal);
        std::string path = dir + name;
        std::filesystem::remove(path);
        auto t0 = std::chrono::steady_clock::now();
        auto written = demo::write_sqlite_desktop(desktop, path, journal);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        int64_t rows = 0;
        for (const auto& [table, n] : written) rows += n;
        std::printf("scale %-6g journal %-6s %8.2f s  %9lld rows  %9.0f rows/s  %8.1f MB  %s\n", scale, journal, s,
                    static_cast<long long>(rows), rows / s, static_cast<double>(std::filesystem::file_size(path)) / 1e6,
                    path.c_str());
        std::fflush(stdout);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "sqlite_desktop_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
