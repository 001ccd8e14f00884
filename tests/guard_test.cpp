// Mass-change protection (a source that only looks empty): the run stops
// before applying, changes nothing, names table and numbers; a normal day's
// deletions pass; --allow-mass-delete lets a person who checked proceed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "guard/mass_change.h"
#include "support/sync_fixture.h"

namespace stagesync::testing {
namespace {

TEST(GuardJudge, DefaultsProtectEmptyTablesAndLargeDeletes) {
  guard::Limits l;
  EXPECT_TRUE(guard::judge({.owned_before = 5, .would_delete = 5, .owned_after = 0}, l));
  EXPECT_FALSE(guard::judge({.owned_before = 0, .would_delete = 0, .owned_after = 0}, l)) << "nothing to lose";
  EXPECT_TRUE(guard::judge({.owned_before = 1000, .would_delete = 201, .owned_after = 799}, l));
  EXPECT_FALSE(guard::judge({.owned_before = 1000, .would_delete = 200, .owned_after = 800}, l));
  EXPECT_FALSE(guard::judge({.owned_before = 20, .would_delete = 10, .owned_after = 10}, l)) << "small tables";
  EXPECT_TRUE(guard::judge({.owned_before = 1000, .would_delete = 0, .owned_after = 1000, .source_rows = 400,
                            .previous_source_rows = 1000}, l));
  l.allow_empty = true;
  l.max_delete_fraction = 1.0;
  EXPECT_FALSE(guard::judge({.owned_before = 5, .would_delete = 5, .owned_after = 0}, l));
}

class Guards : public SyncFixture {
 protected:
  void SetUp() override {
    src().exec("CREATE TABLE clients (id int, name text); INSERT INTO clients SELECT g, 'c' || g FROM generate_series(1, 1000) g;"
               "CREATE TABLE jobs (id int, client_id int); INSERT INTO jobs SELECT g, g FROM generate_series(1, 500) g");
    tgt().exec("CREATE TABLE clients (id int PRIMARY KEY, name text, source char(1) NOT NULL DEFAULT 'D');"
               "CREATE TABLE jobs (id int PRIMARY KEY, client_id int, source char(1) NOT NULL DEFAULT 'D');"
               "INSERT INTO clients VALUES (5000, 'mobile', 'M')");
    cfg_ = config_with_tables("  - { name: clients, key: [id] }\n  - { name: jobs, key: [id] }\n",
                              "owner: { column: source, value: D }\n");
    CliResult first = cli({"sync", "--config", cfg_});
    ASSERT_EQ(first.exit_code, 0) << first.out;
  }
  nlohmann::json last_json(const CliResult& r) {
    std::string out = r.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return nlohmann::json::parse(out.substr(out.rfind('\n') + 1));
  }
  std::string cfg_;
};

TEST_F(Guards, EmptiedSourceTableStopsTheRunAndChangesNothing) {
  src().exec("TRUNCATE clients");
  std::string before = content("clients") + content("jobs");
  CliResult r = cli({"sync", "--config", cfg_, "--json"});
  EXPECT_EQ(r.exit_code, 9) << r.out;
  EXPECT_EQ(content("clients") + content("jobs"), before);
  auto summary = last_json(r);
  EXPECT_NE(summary["error"].get<std::string>().find("table clients: would delete all 1000 owned rows"), std::string::npos)
      << summary.dump();
  bool seen = false;
  for (const auto& t : summary["tables"]) {
    if (t["target"] == "clients") {
      seen = true;
      EXPECT_EQ(t["guard"]["owned_rows_before"], 1000);
      EXPECT_EQ(t["guard"]["would_delete"], 1000);
    }
  }
  EXPECT_TRUE(seen) << summary.dump();
}

TEST_F(Guards, SourceRestoredToAnOlderSmallerStateStops) {
  src().exec("DELETE FROM clients WHERE id > 400");
  CliResult r = cli({"sync", "--config", cfg_});
  EXPECT_EQ(r.exit_code, 9) << r.out;
  EXPECT_NE(r.out.find("would delete 600 of 1000 owned rows (60%, limit 20%)"), std::string::npos) << r.out;
  EXPECT_EQ(count("SELECT count(*) FROM clients WHERE source = 'D'"), 1000);
}

TEST_F(Guards, WrongDatabaseWithOtherKeysStopsEvenThoughTheCountIsSimilar) {
  src().exec("UPDATE clients SET id = id + 100000");
  CliResult r = cli({"sync", "--config", cfg_});
  EXPECT_EQ(r.exit_code, 9) << r.out;
  EXPECT_EQ(count("SELECT count(*) FROM clients WHERE id > 100000"), 0);
}

TEST_F(Guards, ANormalDaysDeletionsPass) {
  src().exec("DELETE FROM clients WHERE id % 20 = 0; DELETE FROM jobs WHERE id <= 5");
  CliResult r = cli({"sync", "--config", cfg_});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(count("SELECT count(*) FROM clients WHERE source = 'D'"), 950);
}

TEST_F(Guards, OverrideForAllOrForNamedTables) {
  src().exec("TRUNCATE clients; DELETE FROM jobs WHERE id > 100");
  CliResult only_jobs = cli({"sync", "--config", cfg_, "--allow-mass-delete=jobs"});
  EXPECT_EQ(only_jobs.exit_code, 9) << "clients is still guarded: " << only_jobs.out;
  EXPECT_EQ(only_jobs.out.find("table jobs:"), std::string::npos) << only_jobs.out;
  EXPECT_EQ(count("SELECT count(*) FROM jobs"), 500);
  CliResult both = cli({"sync", "--config", cfg_, "--allow-mass-delete"});
  EXPECT_EQ(both.exit_code, 0) << both.out;
  EXPECT_EQ(count("SELECT count(*) FROM clients"), 1) << "only the mobile row remains";
  EXPECT_EQ(count("SELECT count(*) FROM jobs"), 100);
}

TEST_F(Guards, ConfiguredLimitsPerTable) {
  src().exec("DELETE FROM jobs WHERE id > 100");
  std::string cfg = config_with_tables(
      "  - { name: clients, key: [id] }\n  - { name: jobs, key: [id], guards: { max_delete_fraction: 0.9, max_shrink_fraction: 0.9 } }\n",
      "owner: { column: source, value: D }\nguards: { max_delete_fraction: 0.1 }\n");
  EXPECT_EQ(cli({"sync", "--config", cfg}).exit_code, 0);
  EXPECT_EQ(count("SELECT count(*) FROM jobs"), 100);
  src().exec("DELETE FROM clients WHERE id > 850");
  CliResult r = cli({"sync", "--config", cfg});
  EXPECT_EQ(r.exit_code, 9) << "15% is over the global 10%: " << r.out;
}

}  // namespace
}  // namespace stagesync::testing

namespace stagesync::testing {
namespace {

// Issue 11 item 3: a guard is judged on counts, before any target row is
// written or locked. A DELETE that ran and was rolled back leaves its
// transaction id in the rows' xmax (and the rows were locked meanwhile, the
// mobile app's updates waiting): no row may carry one after a tripped guard,
// for sync and plan alike.
TEST_F(Guards, ATrippedGuardNeverWroteNorLockedATargetRow) {
  src().exec("DELETE FROM clients WHERE id <= 600");
  for (const std::vector<std::string>& command : {std::vector<std::string>{"sync"}, std::vector<std::string>{"plan"}}) {
    std::vector<std::string> args = command;
    args.insert(args.end(), {"--config", cfg_});
    CliResult r = cli(args);
    if (command[0] == "sync") {
      EXPECT_EQ(r.exit_code, 9) << r.out << r.err;
    } else {
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
      EXPECT_NE((r.out + r.err).find("a sync would stop here"), std::string::npos) << r.out << r.err;
    }
    EXPECT_EQ(count("SELECT count(*) FROM clients WHERE xmax <> '0'::xid"), 0)
        << command[0] << ": owned rows were deleted (and locked) before the guard was judged";
    EXPECT_EQ(count("SELECT count(*) FROM jobs WHERE xmax <> '0'::xid"), 0) << command[0];
  }
  EXPECT_EQ(count("SELECT count(*) FROM clients WHERE source = 'D'"), 1000) << "nothing changed";
}

// A count of owned rows that stops at owned_rows_needed_sql() leads judge() to
// the verdict the whole count gives, for every limit shape (the expression is
// evaluated by the target server, as a run evaluates it).
TEST_F(Guards, OwnedRowsCountedAsFarAsNeededGiveTheWholeCountsVerdict) {
  std::vector<guard::Limits> shapes = {guard::Limits{}, guard::Limits{0.5, 3, 0.5, false},
                                       guard::Limits{0.0, 0, 0.5, false}, guard::Limits{0.2, 10, 0.5, true}};
  for (const auto& l : shapes) {
    for (int64_t would_delete : {0, 3, 10, 11, 30, 300}) {
      pg::Result r = tgt().exec("SELECT " + guard::owned_rows_needed_sql(std::to_string(would_delete) + "::bigint", l));
      for (int64_t owned : {0, 1, 10, 100, 150, 151, 152, 1000, 100000}) {
        if (owned < would_delete) continue;
        int64_t counted = r.is_null(0, 0) ? owned : std::min(owned, r.int64(0, 0));
        for (int64_t after : {0, 50}) {
          guard::Facts whole{.owned_before = owned, .would_delete = would_delete, .owned_after = after};
          guard::Facts capped = whole;
          capped.owned_before = counted;
          EXPECT_EQ(guard::judge(whole, l).has_value(), guard::judge(capped, l).has_value())
              << "fraction " << l.max_delete_fraction << ", min " << l.min_deletes << ", would delete " << would_delete
              << " of " << owned << " (counted " << counted << "), after " << after;
        }
      }
    }
  }
}

}  // namespace
}  // namespace stagesync::testing
