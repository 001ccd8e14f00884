#include "support/sync_fixture.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "report/reporter.h"
#include "run/sync_run.h"
#include "run/verify_run.h"
#include "support/child_process.h"

namespace stagesync::testing {
namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

SyncFixture::SyncFixture()
    : src_db_(Servers::source(), "src"),
      tgt_db_(Servers::target(), "tgt"),
      src_conn_(src_db_.connect()),
      tgt_conn_(tgt_db_.connect()) {}

SyncFixture::~SyncFixture() {
  for (const auto& f : files_) std::remove(f.c_str());
}

std::string stagesync_binary() {
  if (const char* env = std::getenv("STAGESYNC_BINARY")) return env;
  return STAGESYNC_BINARY_PATH;
}

std::string SyncFixture::binary() { return stagesync_binary(); }

std::string SyncFixture::write_config(const std::string& yaml) {
  static std::atomic<int> n{0};
  std::string path = (std::filesystem::temp_directory_path() /
                      ("stagesync-test-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".yaml"))
                         .string();
  std::ofstream(path) << replace_all(replace_all(yaml, "{SOURCE}", source_url()), "{TARGET}", target_url());
  files_.push_back(path);
  return path;
}

std::string SyncFixture::config_with_tables(const std::string& tables_yaml, const std::string& extra) {
  return write_config("source: { url: \"{SOURCE}\" }\ntarget: { url: \"{TARGET}\" }\n" + extra + "tables:\n" +
                      tables_yaml);
}

report::RunSummary SyncFixture::sync(const std::string& config_path, apply::Strategy strategy,
                                     const std::vector<std::string>& tables, bool per_table, const std::string& mode) {
  config::Config cfg = config::load_config(config_path);
  run::SyncOptions o;
  o.mode = mode;
  o.strategy = strategy;
  o.session.tables = tables;
  o.per_table_transactions = per_table;
  NullReporter out;
  return run::run_sync(cfg, o, out);
}

report::RunSummary SyncFixture::verify(const std::string& config_path) {
  config::Config cfg = config::load_config(config_path);
  NullReporter out;
  return run::run_verify(cfg, run::SessionOptions{}, out);
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

CliResult SyncFixture::cli(const std::vector<std::string>& args) {
  static std::atomic<int> n{0};
  std::string base = (std::filesystem::temp_directory_path() /
                      ("stagesync-cli-" + std::to_string(getpid()) + "-" + std::to_string(n++)))
                         .string();
  std::string out_path = base + ".out", err_path = base + ".err";
  ChildExit e = wait_child(start_child(binary(), args, out_path, err_path));
  CliResult r;
  r.exit_code = e.code;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  if (e.timed_out) {
    std::string line;
    for (const auto& a : args) line += " " + a;
    ADD_FAILURE() << "stagesync" << line << " did not finish in time and was killed; output:\n"
                  << r.out << r.err << "\nstacks:\n"
                  << e.stacks;
  }
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return r;
}

pid_t SyncFixture::spawn(const std::vector<std::string>& args) {
  return start_child(binary(), args, "/dev/null", "/dev/null");
}

int SyncFixture::wait_exit(pid_t pid) {
  ChildExit e = wait_child(pid);
  if (e.timed_out)
    ADD_FAILURE() << "stagesync (pid " << pid << ") did not finish in time and was killed; stacks:\n" << e.stacks;
  return e.code;
}

std::string SyncFixture::content(const std::string& table, const std::vector<std::string>& columns) {
  return content_of(tgt_conn_, table, columns);
}

std::string SyncFixture::content_of(pg::Connection& db, const std::string& table,
                                    const std::vector<std::string>& columns, const std::string& where) {
  std::string row = columns.empty() ? "t::text" : "ROW(" + pg::column_list(columns, "t") + ")::text";
  return db
      .exec("SELECT count(*) || ':' || coalesce(md5(string_agg(" + row + ", E'\\n' ORDER BY " + row + ")), '') FROM " +
            table + " t" + (where.empty() ? "" : " WHERE " + where))
      .text(0, 0);
}

std::string SyncFixture::versions(const std::string& table) {
  return tgt_conn_
      .exec(
          "SELECT count(*) || ':' || coalesce(md5(string_agg(ctid::text || '/' || xmin::text, ',' ORDER BY ctid)), '') "
          "FROM " +
          table)
      .text(0, 0);
}

int64_t SyncFixture::count(const std::string& sql) { return tgt_conn_.exec(sql).int64(0, 0); }

std::vector<std::string> SyncFixture::column(const std::string& sql) {
  pg::Result r = tgt_conn_.exec(sql);
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.is_null(i, 0) ? "NULL" : r.text(i, 0));
  return out;
}

}  // namespace stagesync::testing
