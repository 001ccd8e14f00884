// Configuration parsing: every SPEC key is accepted with its meaning; unknown
// keys, wrong types and missing required keys name the file and line.
#include <gtest/gtest.h>

#include "config/config.h"

using stagesync::config::ConfigError;
using stagesync::config::OrphanPolicy;
using stagesync::config::parse_config;

namespace {

const char* kSpecExample = R"(source:
  url: "postgresql://postgres@127.0.0.1:5433/enterprise_db"
  password_env: DESKTOP_DB_PASSWORD
target:
  url: "postgresql://postgres@db.example.org:5432/postgres"
  password_env: SUPABASE_DB_PASSWORD
  environment: production
owner: { column: source, value: D }
scope: { org_id: 3 }
tables:
  - name: climaster
    key: [client_id]
    references:
      - { columns: [con_id], parent: conmaster, on_orphan: keep }
  - name: jobshead
    key: [job_id, sporg_id]
    skip: [jctincharge]
    duplicates: { keep: newest, by: updated_at }
    references:
      - { columns: [client_id], parent: climaster, on_orphan: keep }
  - name: jobtasks
    key: [job_id, task_id]
    generated: [jt_id]
    lookups:
      - { column: client_id, from: jobshead, match: [job_id], take: client_id }
    references:
      - { columns: [job_id], parent: jobshead, on_orphan: skip, parent_columns: [job_id] }
  - name: taskchecklist
    key: none
    generated: [tc_id]
  - name: mbreminder
    target: reminder
    key: [rem_id]
    incremental: { cursor: updated_at }
    set: { synced_by: stagesync }
    owner: none
    scope: none
    compare_ignore: [updated_at]
reverse:
  - name: workdiary
    into: workdiary
    key: [wd_id]
    rows: { owner: M }
)";

std::string error_of(const std::string& yaml) {
  try {
    parse_config(yaml, "cfg.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, SpecExampleParsesWithEveryMeaning) {
  auto c = parse_config(kSpecExample, "cfg.yaml");
  EXPECT_EQ(c.source.password_env, "DESKTOP_DB_PASSWORD");
  EXPECT_EQ(c.target.environment, "production");
  EXPECT_FALSE(c.owner.none);
  EXPECT_EQ(c.owner.column, "source");
  EXPECT_EQ(c.owner.value, "D");
  ASSERT_EQ(c.scope.equals.size(), 1u);
  EXPECT_EQ(c.scope.equals[0].first, "org_id");
  EXPECT_EQ(c.scope.equals[0].second, "3");
  ASSERT_EQ(c.tables.size(), 5u);
  EXPECT_EQ(c.tables[1].key, (std::vector<std::string>{"job_id", "sporg_id"}));
  EXPECT_EQ(c.tables[1].skip, (std::vector<std::string>{"jctincharge"}));
  EXPECT_TRUE(c.tables[1].duplicates.keep_newest);
  EXPECT_EQ(c.tables[1].duplicates.by, "updated_at");
  EXPECT_EQ(c.tables[2].generated, (std::vector<std::string>{"jt_id"}));
  ASSERT_EQ(c.tables[2].lookups.size(), 1u);
  EXPECT_EQ(c.tables[2].lookups[0].take, "client_id");
  EXPECT_EQ(c.tables[2].references[0].on_orphan, OrphanPolicy::Skip);
  EXPECT_EQ(c.tables[2].references[0].parent_columns, (std::vector<std::string>{"job_id"}));
  EXPECT_TRUE(c.tables[3].key_none);
  EXPECT_EQ(c.tables[4].target, "reminder");
  EXPECT_EQ(c.tables[4].incremental.cursor, "updated_at");
  ASSERT_EQ(c.tables[4].set.size(), 1u);
  EXPECT_EQ(c.tables[4].set[0].second, "stagesync");
  EXPECT_TRUE(c.owner_of(c.tables[4]).none);
  EXPECT_TRUE(c.scope_of(c.tables[4]).empty());
  EXPECT_FALSE(c.owner_of(c.tables[0]).none);
  EXPECT_EQ(c.tables[0].target, "climaster");
  ASSERT_EQ(c.reverse.size(), 1u);
  EXPECT_EQ(c.reverse[0].rows, "M");
}

TEST(Config, UnknownKeyNamesFileAndLine) {
  std::string e = error_of("source: { url: x }\ntarget: { url: y }\ntables:\n  - name: a\n    key: [id]\n    skipp: [b]\n");
  EXPECT_NE(e.find("cfg.yaml:6"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'skipp'"), std::string::npos) << e;
}

TEST(Config, MissingKeyIsAnError) {
  std::string e = error_of("source: { url: x }\ntarget: { url: y }\ntables:\n  - name: a\n");
  EXPECT_NE(e.find("cfg.yaml:4"), std::string::npos) << e;
  EXPECT_NE(e.find("'key'"), std::string::npos) << e;
}

TEST(Config, WrongTypesAreErrors) {
  std::string e = error_of(
      "source: { url: x }\ntarget: { url: y }\ntables:\n  - name: a\n    key: [id]\n    references: notalist\n");
  EXPECT_NE(e.find("cfg.yaml:6"), std::string::npos) << e;
  EXPECT_NE(e.find("must be a list"), std::string::npos) << e;
  e = error_of("source: { url: [1, 2] }\ntarget: { url: y }\ntables: []\n");
  EXPECT_NE(e.find("cfg.yaml:1"), std::string::npos) << e;
}

TEST(Config, EveryProblemIsReportedAtOnce) {
  std::string e = error_of(
      "source: { url: x }\ntarget: { url: y, environment: staging }\nbogus: 1\ntables:\n"
      "  - name: a\n    key: [id]\n    references:\n      - { columns: [p], parent: b, on_orphan: maybe }\n");
  EXPECT_NE(e.find("3 problems"), std::string::npos) << e;
  EXPECT_NE(e.find("cfg.yaml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("cfg.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("cfg.yaml:8"), std::string::npos) << e;
}

TEST(Config, MissingRequiredSections) {
  std::string e = error_of("source: { url: x }\n");
  EXPECT_NE(e.find("'target'"), std::string::npos) << e;
  EXPECT_NE(e.find("'tables'"), std::string::npos) << e;
}

TEST(Config, InvalidYamlNamesLine) {
  std::string e = error_of("source: { url: x }\ntarget: [\n");
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
}

TEST(Config, DuplicateTableIsAnError) {
  std::string e = error_of("source: { url: x }\ntarget: { url: y }\ntables:\n  - { name: a, key: [id] }\n  - { name: a, key: [id] }\n");
  EXPECT_NE(e.find("cfg.yaml:5"), std::string::npos) << e;
  EXPECT_NE(e.find("listed twice"), std::string::npos) << e;
}

TEST(Config, SourceNeedsUrlOrSqlite) {
  std::string e = error_of("source: { password_env: X }\ntarget: { url: y }\ntables: []\n");
  EXPECT_NE(e.find("'url'"), std::string::npos) << e;
  EXPECT_NO_THROW(parse_config("source: { sqlite: /tmp/x.db }\ntarget: { url: y }\ntables: []\n", "c"));
}

TEST(Config, DuplicatesFailSpelledOut) {
  auto c = parse_config("source: { url: x }\ntarget: { url: y }\ntables:\n  - { name: a, key: [id], duplicates: fail }\n", "c");
  EXPECT_FALSE(c.tables[0].duplicates.keep_newest);
  std::string e = error_of("source: { url: x }\ntarget: { url: y }\ntables:\n  - { name: a, key: [id], duplicates: { keep: oldest } }\n");
  EXPECT_NE(e.find("newest"), std::string::npos) << e;
}

// Every password variable the configuration names is checked at once, each
// problem naming the variable, its side and its line; loading alone does not
// need them (check_environment is the separate step every command runs).
TEST(Config, CheckEnvironmentNamesEveryUnsetPasswordVariable) {
  setenv("STAGESYNC_CONFIG_TEST_SET", "", 1);  // set, even if empty
  unsetenv("STAGESYNC_CONFIG_TEST_UNSET_A");
  unsetenv("STAGESYNC_CONFIG_TEST_UNSET_B");
  auto ok = parse_config("source: { url: x, password_env: STAGESYNC_CONFIG_TEST_SET }\ntarget: { url: y }\ntables: []\n",
                         "c.yaml");
  EXPECT_NO_THROW(stagesync::config::check_environment(ok));
  auto c = parse_config("source:\n  url: x\n  password_env: STAGESYNC_CONFIG_TEST_UNSET_A\n"
                        "target:\n  url: y\n  password_env: STAGESYNC_CONFIG_TEST_UNSET_B\ntables: []\n",
                        "c.yaml");
  try {
    stagesync::config::check_environment(c);
    FAIL() << "unset variables must be refused";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 2u) << e.what();
    EXPECT_EQ(e.problems()[0].rfind("c.yaml:3: the source's password_env names the environment variable "
                                    "STAGESYNC_CONFIG_TEST_UNSET_A, which is not set", 0),
              0u)
        << e.problems()[0];
    EXPECT_EQ(e.problems()[1].rfind("c.yaml:6: the target's password_env names the environment variable "
                                    "STAGESYNC_CONFIG_TEST_UNSET_B, which is not set", 0),
              0u)
        << e.problems()[1];
  }
}

}  // namespace
