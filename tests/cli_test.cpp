// The command line as users and their scripts see it: check reports every
// problem in one pass before any write, exit codes are distinct, --json is one
// object per line with the summary last, and passwords never appear.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <set>
#include <sstream>

#include "support/sync_fixture.h"
#include "support/tcp_proxy.h"

namespace stagesync::testing {
namespace {

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::stringstream ss(out);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// Fields that are counts, sizes or durations: numbers in every JSON output, or
// null where unknown; never strings (docs/json.md).
const std::set<std::string> kNumericFields = {
    "read",        "inserted",        "updated",     "deleted",           "rejected",   "collisions",
    "orphans_kept", "duplicates_dropped", "foreign_rows_preserved", "seconds", "rows",   "estimate",
    "exit_code",   "owned_rows_before", "would_delete", "source_rows",     "target_rows", "lag_seconds",
    "source_xmin", "source_xmax",     "interrupted_runs", "lock_holder_pid", "metadata_version"};

// Walks `j`; every numeric field found must be a number (or null). Returns how many were checked.
int expect_numbers(const nlohmann::json& j, const std::string& path = "") {
  int checked = 0;
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      if (kNumericFields.count(key) && !value.is_object()) {
        EXPECT_TRUE(value.is_number() || value.is_null()) << path << "." << key << " is " << value.dump();
        ++checked;
      }
      checked += expect_numbers(value, path + "." + key);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) checked += expect_numbers(j[i], path + "[" + std::to_string(i) + "]");
  }
  return checked;
}

bool is_iso_utc(const nlohmann::json& v) {
  static const std::regex iso(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)");
  return v.is_string() && std::regex_match(v.get<std::string>(), iso);
}

class Cli : public SyncFixture {
 protected:
  void SetUp() override {
    src().exec("CREATE TABLE climaster (client_id int, name varchar(50), note text, con_id int, org_id int);"
               "INSERT INTO climaster VALUES (1, 'a', 'x', 1, 3), (2, 'b', 'y', 9, 3)");
    tgt().exec("CREATE TABLE climaster (client_id int PRIMARY KEY, name varchar(50), note text, con_id int, org_id int, "
               "source char(1) NOT NULL DEFAULT 'D')");
  }
  std::string good_config() {
    return config_with_tables("  - { name: climaster, key: [client_id] }\n", "owner: { column: source, value: D }\n");
  }
  bool stagesync_schema_exists() {
    return count("SELECT count(*) FROM pg_namespace WHERE nspname = 'stagesync'") > 0;
  }
};

TEST_F(Cli, CheckPassesOnAGoodConfiguration) {
  CliResult r = cli({"check", "--config", good_config()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(stagesync_schema_exists()) << "check must not write to the target";
  // The pre-flight checklist, as facts.
  EXPECT_NE(r.err.find("environment production"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("strategy merge: stages every row"), std::string::npos) << r.err;
  ASSERT_EQ(cli({"sync", "--config", good_config()}).exit_code, 0);
  ASSERT_EQ(cli({"backup", "--config", good_config()}).exit_code, 0);
  CliResult again = cli({"check", "--config", good_config(), "--strategy", "truncate-first"});
  EXPECT_NE(again.err.find("restorable"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("Refused here: the target is not declared development"), std::string::npos) << again.err;
}

TEST_F(Cli, CheckReportsEveryProblemInOnePassBeforeAnyWrite) {
  src().exec("CREATE TABLE jobs (job_id int, title text, extra text, cost text)");
  tgt().exec("CREATE TABLE jobs (job_id int PRIMARY KEY, title text, cost integer, must_fill int NOT NULL)");
  std::string cfg = config_with_tables(
      "  - { name: climaster, key: [client_id], skip: [nosuch], references: [ { columns: [con_id], parent: conmaster } ] }\n"
      "  - { name: jobs, key: [job_id, missing_key] }\n"
      "  - { name: ghost, key: [id] }\n",
      "owner: { column: source, value: D }\n");
  CliResult r = cli({"check", "--config", cfg});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  std::string all = r.out + r.err;
  for (const char* expected : {"skip column 'nosuch'", "parent 'conmaster' is not a table listed",
                               "key column 'missing_key' does not exist", "source column 'extra' has no column",
                               "source type text cannot be stored in target type integer",
                               "'must_fill' is NOT NULL without a default", "source table 'ghost' does not exist",
                               "owner column 'source' does not exist in target table jobs"}) {
    EXPECT_NE(all.find(expected), std::string::npos) << "missing: " << expected << "\n" << all;
  }
  // sync refuses the same configuration before writing anything.
  CliResult s = cli({"sync", "--config", cfg});
  EXPECT_EQ(s.exit_code, 3);
  EXPECT_FALSE(stagesync_schema_exists());
}

TEST_F(Cli, UnreachableServersEndWithOneClearLineAndNoWrite) {
  int dead_port = cluster::free_port();
  std::string cfg = write_config("source: { url: \"postgresql://postgres@127.0.0.1:" + std::to_string(dead_port) +
                                 "/x\" }\ntarget: { url: \"{TARGET}\" }\ntables:\n  - { name: climaster, key: [client_id] }\n");
  CliResult r = cli({"sync", "--config", cfg});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("source: cannot connect"), std::string::npos) << r.out;
  EXPECT_FALSE(stagesync_schema_exists());
  CliResult c = cli({"check", "--config", cfg});
  EXPECT_EQ(c.exit_code, 3);
  EXPECT_NE((c.out + c.err).find("source: cannot connect"), std::string::npos);
}

TEST_F(Cli, BadConfigurationExitsTwoNamingFileAndLine) {
  std::string cfg = write_config("source: { url: \"{SOURCE}\" }\ntarget: { url: \"{TARGET}\" }\ntables:\n  - { name: climaster, kee: [client_id] }\n");
  CliResult r = cli({"sync", "--config", cfg});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find(cfg + ":4"), std::string::npos) << r.out;
  CliResult missing = cli({"sync", "--config", "/nonexistent/stagesync.yaml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(cli({"sync"}).exit_code, 2) << "missing --config is a usage error";
  EXPECT_EQ(cli({"sync", "--config", good_config(), "--strategy", "yolo"}).exit_code, 2);
}

TEST_F(Cli, JsonIsOneObjectPerLineWithTheSummaryLast) {
  CliResult r = cli({"sync", "--config", good_config(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lines = json_lines(r.out);
  ASSERT_GE(lines.size(), 2u);
  const auto& summary = lines.back();
  EXPECT_EQ(summary["event"], "summary");
  EXPECT_EQ(summary["outcome"], "succeeded");
  EXPECT_EQ(summary["exit_code"], 0);
  ASSERT_EQ(summary["tables"].size(), 1u);
  EXPECT_EQ(summary["tables"][0]["counts"]["inserted"], 2);
  EXPECT_EQ(summary["tables"][0]["mode_used"], "full");
  for (size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_NE(lines[i]["event"], "summary");
  // A failure is a summary too, with its exit code.
  src().exec("INSERT INTO climaster VALUES (1, 'dup', NULL, 1, 3)");
  CliResult f = cli({"sync", "--config", good_config(), "--json"});
  EXPECT_EQ(f.exit_code, 5);
  auto flines = json_lines(f.out);
  ASSERT_FALSE(flines.empty());
  EXPECT_EQ(flines.back()["outcome"], "failed");
  EXPECT_EQ(flines.back()["exit_code"], 5);
}

TEST_F(Cli, PasswordsFromNamedEnvironmentVariablesNeverAppear) {
  // The servers trust local connections, so a wrong password still connects:
  // what is checked is that the secret is used and never printed.
  std::string secret = "s3cret-Pa55-word-xyz";
  setenv("STAGESYNC_TEST_SECRET", secret.c_str(), 1);
  std::string cfg = write_config("source: { url: \"{SOURCE}\", password_env: STAGESYNC_TEST_SECRET }\n"
                                 "target: { url: \"{TARGET}\", password_env: STAGESYNC_TEST_SECRET }\n"
                                 "tables:\n  - { name: climaster, key: [client_id] }\n  - { name: nope, key: [id] }\n");
  for (const auto& args : std::vector<std::vector<std::string>>{{"check", "--config", cfg}, {"sync", "--config", cfg, "--json"}}) {
    CliResult r = cli(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ((r.out + r.err).find(secret), std::string::npos) << "password printed by " << args[0];
  }
  unsetenv("STAGESYNC_TEST_SECRET");
  CliResult unset = cli({"check", "--config", cfg});
  EXPECT_NE((unset.out + unset.err).find("STAGESYNC_TEST_SECRET"), std::string::npos) << "must name the missing variable";
}

TEST_F(Cli, SecondRunWaitsOrExitsSevenWhileTheLockIsHeld) {
  cli({"sync", "--config", good_config()});
  pg::Connection holder = tgt_db_.connect();
  holder.exec("SELECT pg_advisory_lock(hashtextextended('stagesync run ', 0))");
  CliResult r = cli({"sync", "--config", good_config()});
  EXPECT_EQ(r.exit_code, 7) << r.out << r.err;
  EXPECT_NE(r.out.find("another stagesync run is in progress"), std::string::npos) << r.out;
  holder.exec("SELECT pg_advisory_unlock_all()");
  EXPECT_EQ(cli({"sync", "--config", good_config()}).exit_code, 0);
}

TEST_F(Cli, VerifyMatchesAfterSyncAndReportsTampering) {
  std::string cfg = good_config();
  EXPECT_EQ(cli({"verify", "--config", cfg}).exit_code, 6) << "an empty target differs from the source";
  ASSERT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
  CliResult ok = cli({"verify", "--config", cfg, "--json"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  // Foreign rows do not count; a changed owned row does.
  tgt().exec("INSERT INTO climaster VALUES (500, 'mobile', NULL, NULL, 3, 'M')");
  EXPECT_EQ(cli({"verify", "--config", cfg}).exit_code, 0);
  tgt().exec("UPDATE climaster SET note = 'tampered' WHERE client_id = 2");
  CliResult bad = cli({"verify", "--config", cfg, "--json"});
  EXPECT_EQ(bad.exit_code, 6);
  auto lines = json_lines(bad.out);
  EXPECT_EQ(lines.back()["tables"][0]["matches"], false);
  EXPECT_EQ(lines.back()["tables"][0]["source_rows"], lines.back()["tables"][0]["target_rows"]);
  EXPECT_EQ(count("SELECT count(*) FROM climaster WHERE note = 'tampered'"), 1) << "verify must not write";
}

TEST_F(Cli, StatusShowsRunsTablesAndLeftoversOfAnInterruptedRun) {
  std::string cfg = good_config();
  CliResult empty = cli({"status", "--config", cfg, "--json"});
  EXPECT_EQ(empty.exit_code, 0) << empty.out << empty.err;
  EXPECT_EQ(json_lines(empty.out).back()["runs"].size(), 0u);
  ASSERT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
  // What a run killed mid-staging leaves behind.
  tgt().exec("INSERT INTO stagesync.runs (run_id, command, status) VALUES ('killed_run', 'sync', 'running');"
             "CREATE UNLOGGED TABLE stagesync.s_killed_run_0 (x int)");
  CliResult r = cli({"status", "--config", cfg, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto s = json_lines(r.out).back();
  EXPECT_EQ(s["runs"].size(), 2u);
  EXPECT_EQ(s["interrupted_runs"], 1);
  EXPECT_EQ(s["staging_tables"][0], "s_killed_run_0");
  ASSERT_TRUE(s["tables"][0]["last_counts"]["inserted"].is_number_integer()) << s.dump();
  EXPECT_EQ(s["tables"][0]["last_counts"]["inserted"], 2);
  CliResult human = cli({"status", "--config", cfg});
  EXPECT_NE(human.out.find("leftover staging tables"), std::string::npos) << human.out;
  // The next run cleans up and says so.
  ASSERT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
  auto after = json_lines(cli({"status", "--config", cfg, "--json"}).out).back();
  EXPECT_EQ(after["staging_tables"].size(), 0u);
  EXPECT_EQ(after["interrupted_runs"], 0);
  EXPECT_EQ(count("SELECT count(*) FROM stagesync.runs WHERE run_id = 'killed_run' AND status = 'abandoned'"), 1);
}

// Every command that connects checks every configured password variable
// first: a missing one is a configuration error (2), named with its side, and
// neither server sees a connection (both are reached through proxies that
// count the bytes they forward).
TEST_F(Cli, MissingPasswordVariableExitsTwoBeforeAnyConnection) {
  TcpProxy source_proxy(Servers::source().port()), target_proxy(Servers::target().port());
  auto via = [](const TcpProxy& p, const std::string& db) {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(p.port()) + "/" + db;
  };
  setenv("STAGESYNC_TEST_SOURCE_PW", "irrelevant", 1);
  unsetenv("STAGESYNC_TEST_UNSET_PW");
  std::string cfg = write_config("source: { url: \"" + via(source_proxy, src_db_.name()) +
                                 "\", password_env: STAGESYNC_TEST_SOURCE_PW }\n"
                                 "target:\n  url: \"" + via(target_proxy, tgt_db_.name()) +
                                 "\"\n  password_env: STAGESYNC_TEST_UNSET_PW\n"
                                 "owner: { column: source, value: D }\n"
                                 "tables:\n  - { name: climaster, key: [client_id] }\n");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"check", "--config", cfg},
           {"sync", "--config", cfg},
           {"sync", "--config", cfg, "--mode", "incremental", "--json"},
           {"plan", "--config", cfg},
           {"verify", "--config", cfg},
           {"status", "--config", cfg},
           {"backup", "--config", cfg},
           {"backup", "--config", cfg, "--list"},
           {"restore", "--config", cfg, "--backup", "bk_none"}}) {
    CliResult r = cli(args);
    std::string all = r.out + r.err;
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << all;
    EXPECT_NE(all.find("target's password_env names the environment variable STAGESYNC_TEST_UNSET_PW"),
              std::string::npos)
        << args[0] << ": " << all;
    EXPECT_NE(all.find(cfg + ":4: "), std::string::npos) << "names file and line: " << all;
  }
  EXPECT_EQ(source_proxy.bytes(), 0) << "the source saw a connection";
  EXPECT_EQ(target_proxy.bytes(), 0) << "the target saw a connection";
  // The source's variable is checked the same way, and both are named at once.
  unsetenv("STAGESYNC_TEST_SOURCE_PW");
  CliResult both = cli({"sync", "--config", cfg, "--json"});
  EXPECT_EQ(both.exit_code, 2);
  auto summary = json_lines(both.out).back();
  EXPECT_EQ(summary["exit_code"], 2);
  std::string error = summary["error"].get<std::string>();
  EXPECT_NE(error.find("source's password_env names the environment variable STAGESYNC_TEST_SOURCE_PW"),
            std::string::npos) << error;
  EXPECT_NE(error.find("STAGESYNC_TEST_UNSET_PW"), std::string::npos) << error;
  // Library callers that skip the check get the connection's own typed refusal, not a database error.
  EXPECT_THROW(sync(cfg), pg::MissingPassword);
  EXPECT_EQ(source_proxy.bytes() + target_proxy.bytes(), 0);
  EXPECT_FALSE(stagesync_schema_exists());
}

// Swap and merge refuse a delete that foreign keys from other tables would
// carry into rows the sync does not own with the same outcome: exit 5, and
// nothing changed.
TEST_F(Cli, ForeignKeyRefusalsExitFiveWhateverTheStrategy) {
  tgt().exec("INSERT INTO climaster VALUES (1, 'a', 'x', 1, 3, 'D'), (2, 'b', 'y', 9, 3, 'D');"
             "CREATE TABLE mobile_note (id int PRIMARY KEY, client_id int REFERENCES climaster ON DELETE CASCADE);"
             "INSERT INTO mobile_note VALUES (10, 2)");
  std::string before = content("climaster") + content("mobile_note");
  CliResult swap = cli({"sync", "--config", good_config(), "--strategy", "swap", "--json"});
  EXPECT_EQ(swap.exit_code, 5) << swap.out << swap.err;
  EXPECT_NE(swap.out.find("mobile_note_client_id_fkey"), std::string::npos) << swap.out;
  EXPECT_NE(swap.out.find("use --strategy merge"), std::string::npos) << swap.out;
  EXPECT_EQ(json_lines(swap.out).back()["exit_code"], 5);
  EXPECT_EQ(content("climaster") + content("mobile_note"), before);
  // The merge's equivalent: a vanished owned row still referenced through the cascade.
  src().exec("DELETE FROM climaster WHERE client_id = 2");
  CliResult merge = cli({"sync", "--config", good_config()});
  EXPECT_EQ(merge.exit_code, 5) << merge.out << merge.err;
  EXPECT_NE(merge.out.find("mobile_note_client_id_fkey"), std::string::npos) << merge.out;
  EXPECT_EQ(content("climaster") + content("mobile_note"), before);
  // Swap with a plain foreign key (no cascade) onto owned rows: the same refusal.
  tgt().exec("ALTER TABLE mobile_note DROP CONSTRAINT mobile_note_client_id_fkey;"
             "ALTER TABLE mobile_note ADD CONSTRAINT mobile_note_client_fk FOREIGN KEY (client_id) REFERENCES climaster");
  std::string before_plain = content("climaster") + content("mobile_note");
  CliResult plain = cli({"sync", "--config", good_config(), "--strategy", "swap"});
  EXPECT_EQ(plain.exit_code, 5) << plain.out << plain.err;
  EXPECT_NE(plain.out.find("mobile_note_client_fk"), std::string::npos) << plain.out;
  EXPECT_EQ(content("climaster") + content("mobile_note"), before_plain);
}

// `sync --json`: counts and seconds are numbers, what does not apply is null.
TEST_F(Cli, SyncJsonWritesNumbersAsNumbersAndNullWhereUnknown) {
  CliResult r = cli({"sync", "--config", good_config(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lines = json_lines(r.out);
  int checked = 0;
  for (const auto& line : lines) checked += expect_numbers(line);
  EXPECT_GT(checked, 10);
  const auto& summary = lines.back();
  EXPECT_TRUE(summary["run_id"].is_string());
  EXPECT_TRUE(summary["error"].is_null()) << summary.dump();
  EXPECT_TRUE(summary["backup_id"].is_null()) << "merge takes no backup: " << summary.dump();
  EXPECT_TRUE(summary["problems"].is_array());
  EXPECT_TRUE(summary["seconds"].is_number());
  EXPECT_TRUE(summary["tables"][0]["counts"]["inserted"].is_number_integer());
  EXPECT_TRUE(summary["tables"][0]["guard"]["tripped"].is_null());
  bool staged = false;
  for (const auto& line : lines) {
    if (line["event"] != "staged") continue;
    staged = true;
    EXPECT_TRUE(line["rows"].is_number_integer()) << line.dump();
    EXPECT_TRUE(line["estimate"].is_null() || line["estimate"].get<int64_t>() >= 0) << line.dump();
  }
  EXPECT_TRUE(staged) << r.out;
  // check's problems as a list, each one an element.
  tgt().exec("ALTER TABLE climaster DROP COLUMN note, DROP COLUMN con_id");
  CliResult c = cli({"check", "--config", good_config(), "--json"});
  EXPECT_EQ(c.exit_code, 3);
  auto cs = json_lines(c.out).back();
  ASSERT_TRUE(cs["problems"].is_array()) << cs.dump();
  EXPECT_GE(cs["problems"].size(), 2u) << cs.dump();
  for (const auto& p : cs["problems"]) EXPECT_TRUE(p.is_string() && !p.get<std::string>().empty()) << cs.dump();
  EXPECT_EQ(cs["exit_code"], 3);
}

// `status` lists recent backups with the run that took each: after a
// truncate-first run its automatic backup's id is there, for people and for
// machines; counts, seconds and ids of the JSON are numbers, times ISO 8601.
TEST_F(Cli, StatusListsBackupsAndWritesNumbersAndIsoTimes) {
  std::string cfg = write_config("source: { url: \"{SOURCE}\" }\ntarget: { url: \"{TARGET}\", environment: development }\n"
                                 "owner: { column: source, value: D }\n"
                                 "tables:\n  - { name: climaster, key: [client_id] }\n");
  auto fresh = json_lines(cli({"status", "--config", cfg, "--json"}).out).back();
  EXPECT_TRUE(fresh["backups"].is_array() && fresh["backups"].empty()) << fresh.dump();
  EXPECT_TRUE(fresh["tables"][0]["last_success"].is_null());
  EXPECT_TRUE(fresh["tables"][0]["last_counts"].is_null());
  ASSERT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
  ASSERT_EQ(cli({"backup", "--config", cfg}).exit_code, 0);
  CliResult tf = cli({"sync", "--config", cfg, "--strategy", "truncate-first", "--i-accept-data-loss", "--json"});
  ASSERT_EQ(tf.exit_code, 0) << tf.out << tf.err;
  auto run = json_lines(tf.out).back();
  std::string backup_id = run["backup_id"].get<std::string>(), run_id = run["run_id"].get<std::string>();
  ASSERT_FALSE(backup_id.empty());

  CliResult r = cli({"status", "--config", cfg, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto st = json_lines(r.out).back();
  EXPECT_EQ(st["event"], "status");
  EXPECT_GT(expect_numbers(st), 10);
  ASSERT_EQ(st["backups"].size(), 2u) << st.dump();
  const auto& automatic = st["backups"][0];
  EXPECT_EQ(automatic["backup_id"], backup_id);
  EXPECT_EQ(automatic["run_id"], run_id) << "which run took it";
  EXPECT_TRUE(is_iso_utc(automatic["created_at"])) << automatic.dump();
  EXPECT_EQ(automatic["restorable"], true);
  ASSERT_EQ(automatic["tables"].size(), 1u);
  EXPECT_EQ(automatic["tables"][0]["table"], "climaster");
  ASSERT_TRUE(automatic["tables"][0]["rows"].is_number_integer());
  EXPECT_EQ(automatic["tables"][0]["rows"], 2);
  EXPECT_TRUE(st["backups"][1]["run_id"].is_null()) << "taken by `stagesync backup`: " << st["backups"][1].dump();
  const auto& latest = st["runs"][0];
  EXPECT_EQ(latest["run_id"], run_id);
  EXPECT_TRUE(is_iso_utc(latest["started"])) << latest.dump();
  EXPECT_TRUE(is_iso_utc(latest["finished"])) << latest.dump();
  EXPECT_TRUE(latest["seconds"].is_number()) << latest.dump();
  EXPECT_EQ(latest["tables"], nlohmann::json::array({"climaster"})) << latest.dump();
  EXPECT_TRUE(latest["error"].is_null());
  const auto& t = st["tables"][0];
  EXPECT_TRUE(is_iso_utc(t["last_success"])) << t.dump();
  EXPECT_TRUE(t["lag_seconds"].is_number_integer()) << t.dump();
  EXPECT_EQ(t["last_run_id"], run_id);
  for (const char* k : {"read", "inserted", "updated", "deleted", "rejected"}) {
    EXPECT_TRUE(t["last_counts"][k].is_number_integer()) << k << ": " << t.dump();
  }
  EXPECT_EQ(t["last_counts"]["inserted"], 2);
  EXPECT_TRUE(t["watermark"].is_null() || t["watermark"]["source_xmin"].is_number_integer()) << t.dump();
  EXPECT_TRUE(st["lock_holder_pid"].is_null());
  EXPECT_TRUE(st["interrupted_runs"].is_number_integer());

  CliResult human = cli({"status", "--config", cfg});
  EXPECT_NE(human.out.find("recent backups"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find(backup_id + "  "), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("taken by run " + run_id), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("climaster (2 rows)"), std::string::npos) << human.out;

  // backup --list --json: the same objects, one line each.
  auto listed = json_lines(cli({"backup", "--config", cfg, "--list", "--json"}).out);
  ASSERT_GE(listed.size(), 3u);
  EXPECT_EQ(listed[0]["event"], "backup");
  EXPECT_EQ(listed[0]["backup_id"], backup_id);
  EXPECT_EQ(listed[0]["tables"][0]["rows"], 2);
  EXPECT_EQ(listed.back()["event"], "summary");
}

TEST_F(Cli, ReverseWithoutReverseEntriesSaysSoAndFails) {
  CliResult r = cli({"reverse", "--config", good_config()});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("no 'reverse:' entries"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace stagesync::testing
