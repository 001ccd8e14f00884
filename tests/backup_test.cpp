// The development strategy done responsibly, and backups. The seed's test
// method as a test: kill -9 during a truncate-first run really does leave
// tables partial, and `restore` brings back the exact pre-run state; the same
// kill during merge or swap never loses anything.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/scenario.h"
#include "support/tcp_proxy.h"

namespace stagesync::testing {
namespace {

// Every column of every public table, identity values included: "byte-identical".
TableState full_snapshot(pg::Connection& db) {
  db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
  pg::Result tables = db.exec("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'");
  TableState s;
  for (int i = 0; i < tables.rows(); ++i) {
    std::string t = pg::ident(tables.text(i, 0));
    s[tables.text(i, 0)] =
        db.exec("SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') FROM " + t + " x")
            .text(0, 0);
  }
  db.exec("COMMIT");
  return s;
}

class Development : public Scenario {
 protected:
  void SetUp() override { build(0.2, "retry: { attempts: 1 }\n"); }

  std::string dev_config(const std::string& target_url) {
    return write_config(replace_target_env(read(config_for(target_url))));
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static std::string replace_target_env(std::string yaml) {
    size_t at = yaml.find("target:");
    yaml.insert(yaml.find('\n', at) + 1, "  environment: development\n");
    return yaml;
  }
  std::string latest_backup(pg::Connection& c) {
    return c.exec("SELECT backup_id FROM stagesync.backups ORDER BY created_at DESC LIMIT 1").text(0, 0);
  }
};

TEST_F(Development, TruncateFirstNeedsADevelopmentTargetAndTheFlag) {
  TempDatabase db(Servers::target(), "dev");
  recreate_from_template(db.name());
  std::string prod = config_for(db.url()), dev = dev_config(db.url());
  pg::Connection c = db.connect();
  TableState before = full_snapshot(c);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"sync", "--config", prod, "--strategy", "truncate-first", "--i-accept-data-loss"},
           {"sync", "--config", prod, "--strategy", "truncate-first"},
           {"sync", "--config", dev, "--strategy", "truncate-first"}}) {
    CliResult r = cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("--strategy merge"), std::string::npos) << r.out;
  }
  EXPECT_EQ(full_snapshot(c), before);
  CliResult ok = cli({"sync", "--config", dev, "--strategy", "truncate-first", "--i-accept-data-loss", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(snapshot(c), after_);
  EXPECT_EQ(c.exec("SELECT count(*) FROM stagesync.backups").int64(0, 0), 1) << "an automatic backup first";
  EXPECT_NE(ok.out.find("\"backup_id\":\"bk"), std::string::npos);
}

TEST_F(Development, KillDuringTruncateFirstLeavesTablesPartialAndRestoreBringsThemBack) {
  TempDatabase db(Servers::target(), "seed");
  recreate_from_template(db.name());
  pg::Connection c = db.connect();
  TableState exact_before = full_snapshot(c);
  TcpProxy proxy(Servers::target().port());
  // Freeze the run at its second batch insert, then kill -9 it there.
  proxy.hold_on("WITH s AS (DELETE FROM", 2);
  std::string cfg = dev_config("postgresql://postgres@127.0.0.1:" + std::to_string(proxy.port()) + "/" + db.name());
  pid_t pid = spawn({"sync", "--config", cfg, "--strategy", "truncate-first", "--i-accept-data-loss"});
  for (int i = 0; i < 600 && !proxy.held(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(proxy.held()) << "the run never reached its second batch";
  kill(pid, SIGKILL);
  wait_exit(pid);
  proxy.stop();
  wait_for_backends_gone(db.name());
  // The unsafe pattern shows: tables are neither as before nor as after.
  TableState mid = snapshot(c);
  int partial = 0;
  for (const auto& [table, sum] : mid) partial += sum != before_.at(table) && sum != after_.at(table);
  EXPECT_GT(partial, 0) << "truncate-first killed midway should leave partial tables";
  // restore brings back the exact pre-run state, identity values and all.
  std::string id = latest_backup(c);
  CliResult r = cli({"restore", "--config", dev_config(db.url()), "--backup", id});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(full_snapshot(c), exact_before);
}

TEST_F(Development, TheSameKillDuringMergeOrSwapLosesNothing) {
  for (const char* strategy : {"merge", "swap"}) {
    TempDatabase db(Servers::target(), "safe");
    recreate_from_template(db.name());
    pg::Connection c = db.connect();
    TcpProxy proxy(Servers::target().port());
    proxy.hold_on("INSERT INTO", 2);  // inside the apply transaction
    std::string cfg = config_for("postgresql://postgres@127.0.0.1:" + std::to_string(proxy.port()) + "/" + db.name());
    pid_t pid = spawn({"sync", "--config", cfg, "--strategy", strategy});
    for (int i = 0; i < 600 && !proxy.held(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(proxy.held()) << strategy;
    kill(pid, SIGKILL);
    wait_exit(pid);
    proxy.stop();
    wait_for_backends_gone(db.name());
    EXPECT_EQ(snapshot(c), before_) << strategy << ": killed before COMMIT, every table as before";
  }
}

TEST_F(Development, BackupRestoreTouchesOnlyOwnedRows) {
  TempDatabase db(Servers::target(), "bk");
  recreate_from_template(db.name());
  std::string cfg = config_for(db.url());
  pg::Connection c = db.connect();
  CliResult b = cli({"backup", "--config", cfg, "--tables", "climaster,jobshead", "--json"});
  ASSERT_EQ(b.exit_code, 0) << b.out;
  std::string id = latest_backup(c);
  std::string owned_before = c.exec("SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM climaster x WHERE source = 'D'").text(0, 0);
  ASSERT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
  c.exec("INSERT INTO climaster (client_id, client_name, source) VALUES (987654321, 'written by the app after the backup', 'M')");
  ASSERT_EQ(cli({"restore", "--config", cfg, "--backup", id}).exit_code, 0);
  EXPECT_EQ(c.exec("SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM climaster x WHERE source = 'D'").text(0, 0),
            owned_before);
  EXPECT_EQ(c.exec("SELECT count(*) FROM climaster WHERE client_id = 987654321").int64(0, 0), 1)
      << "a foreign row written after the backup survives the restore";
}

TEST_F(Development, RestoreRefusesATableThatChangedShape) {
  TempDatabase db(Servers::target(), "shape");
  recreate_from_template(db.name());
  std::string cfg = config_for(db.url());
  pg::Connection c = db.connect();
  ASSERT_EQ(cli({"backup", "--config", cfg}).exit_code, 0);
  std::string id = latest_backup(c);
  ASSERT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
  c.exec("ALTER TABLE reminder ADD COLUMN extra text");
  TableState before = full_snapshot(c);
  CliResult r = cli({"restore", "--config", cfg, "--backup", id});
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("reminder changed shape"), std::string::npos) << r.out;
  EXPECT_EQ(full_snapshot(c), before) << "nothing restored";
  CliResult list = cli({"backup", "--config", cfg, "--list"});
  EXPECT_NE(list.err.find("NOT RESTORABLE"), std::string::npos) << list.err;
  EXPECT_EQ(cli({"restore", "--config", cfg, "--backup", "bk_nonexistent"}).exit_code, 2);
}

TEST_F(Development, PruneKeepsTheNewest) {
  TempDatabase db(Servers::target(), "prune");
  recreate_from_template(db.name());
  std::string cfg = config_for(db.url());
  pg::Connection c = db.connect();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(cli({"backup", "--config", cfg, "--tables", "orgmaster"}).exit_code, 0);
  std::string newest = latest_backup(c);
  ASSERT_EQ(cli({"backup", "--config", cfg, "--prune", "1"}).exit_code, 0);
  EXPECT_EQ(c.exec("SELECT count(*) FROM stagesync.backups").int64(0, 0), 1);
  EXPECT_EQ(latest_backup(c), newest);
  EXPECT_EQ(c.exec("SELECT count(*) FROM pg_class WHERE relnamespace = 'stagesync'::regnamespace AND relname LIKE 'b\\_%'")
                .int64(0, 0), 1);
}

}  // namespace
}  // namespace stagesync::testing
