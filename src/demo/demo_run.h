// `stagesync demo`: a complete, self-contained demonstration. Starts a
// throwaway PostgreSQL, creates a realistic desktop database and a cloud
// database with mobile-created rows, runs a full sync, changes desktop data,
// syncs again, verifies, and prints a short summary with timings.
#pragma once

#include <string>

namespace stagesync::demo {

struct DemoOptions {
  double scale = 1.0;
  bool keep = false;
  bool json = false;
  std::string source = "postgresql";  // postgresql | sqlite: the desktop database the demo syncs from
};

int run_demo(const DemoOptions& options);

}  // namespace stagesync::demo
