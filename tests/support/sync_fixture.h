// A source database and a target database of their own for one test, with
// helpers to write a configuration, run stagesync (in-process or as the real
// binary), and observe the target without trusting the tool: content
// checksums, and physical row versions (ctid, xmin) to prove "nothing written".
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "apply/strategy.h"
#include "report/reporter.h"
#include "report/run_summary.h"
#include "support/servers.h"

namespace stagesync::testing {

// A reporter that says nothing, for in-process runs.
class NullReporter : public report::Reporter {
 public:
  void info(const std::string&) override {}
  void warning(const std::string&) override {}
  void progress(const report::Progress&) override {}
  void table_done(const report::TableResult&) override {}
  void finished(const report::RunSummary&) override {}
};

struct CliResult {
  int exit_code = -1;
  std::string out;  // standard output
  std::string err;  // standard error
};

// An integer from the environment (test knobs such as trial counts), or `fallback`.
int env_int(const char* name, int fallback);
// The stagesync binary under test ($STAGESYNC_BINARY, else the one built with the tests).
std::string stagesync_binary();

class SyncFixture : public ::testing::Test {
 protected:
  SyncFixture();

  pg::Connection& src() { return src_conn_; }
  pg::Connection& tgt() { return tgt_conn_; }
  std::string source_url() const { return src_db_.url(); }
  std::string target_url() const { return tgt_db_.url(); }

  // Writes `yaml` (after replacing {SOURCE} and {TARGET}) to a temp file; returns its path.
  std::string write_config(const std::string& yaml);
  // Config with the given `tables:` block (and optional extra top-level YAML).
  std::string config_with_tables(const std::string& tables_yaml, const std::string& extra = "");

  // Runs sync in-process. Exceptions propagate.
  report::RunSummary sync(const std::string& config_path, apply::Strategy strategy = apply::Strategy::Merge,
                          const std::vector<std::string>& tables = {}, bool per_table = false,
                          const std::string& mode = "full");
  report::RunSummary incremental(const std::string& config_path, bool per_table = false) {
    return sync(config_path, apply::Strategy::Merge, {}, per_table, "incremental");
  }
  report::RunSummary verify(const std::string& config_path);
  // Runs the real stagesync binary with arguments; captures output.
  CliResult cli(const std::vector<std::string>& args);
  // Starts the binary in the background (output discarded); returns its pid.
  pid_t spawn(const std::vector<std::string>& args);
  // Waits for a spawned process: its exit code, or 128 + signal.
  static int wait_exit(pid_t pid);

  // Content of a table, independent of physical order: md5 of sorted row texts
  // over `columns` (all columns when empty).
  std::string content(const std::string& table, const std::vector<std::string>& columns = {});
  // The same over the rows of `table` on `db` that satisfy `where` (alias t), if given.
  static std::string content_of(pg::Connection& db, const std::string& table, const std::vector<std::string>& columns,
                                const std::string& where = "");
  // Physical identity of every row version: changes on any insert, update or delete.
  std::string versions(const std::string& table);
  int64_t count(const std::string& sql);
  std::vector<std::string> column(const std::string& sql);

  static std::string binary();

  TempDatabase src_db_;
  TempDatabase tgt_db_;
  pg::Connection src_conn_;
  pg::Connection tgt_conn_;
  std::vector<std::string> files_;
  ~SyncFixture() override;
};

}  // namespace stagesync::testing
