// `stagesync plan` predicts, table by table, exactly what the following sync
// does (inserts, updates, deletes, rejects, collisions, orphans), and writes
// nothing to synced tables.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "support/scenario.h"

namespace stagesync::testing {
namespace {

nlohmann::json summary_of(const std::string& out) {
  std::stringstream ss(out);
  std::string line, last;
  while (std::getline(ss, line))
    if (!line.empty()) last = line;
  return nlohmann::json::parse(last);
}

class Plan : public Scenario {
 protected:
  void SetUp() override { build(0.1); }

  void expect_plan_matches_sync(const std::string& strategy) {
    TempDatabase db(Servers::target(), "plan");
    recreate_from_template(db.name());
    std::string cfg = config_for(db.url());
    pg::Connection c = db.connect();
    TableState before = snapshot(c);
    CliResult plan = cli({"plan", "--config", cfg, "--json", "--strategy", strategy});
    ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
    EXPECT_EQ(snapshot(c), before) << "plan changed a synced table";
    CliResult sync = cli({"sync", "--config", cfg, "--json", "--strategy", strategy});
    ASSERT_EQ(sync.exit_code, 0) << sync.out << sync.err;
    auto s = summary_of(sync.out)["tables"];
    // The plan also shows what `stagesync reverse` would do (entries with mode_requested "reverse").
    nlohmann::json p = nlohmann::json::array(), planned = summary_of(plan.out);
    for (const auto& t : planned["tables"]) {
      if (t.value("mode_requested", std::string()) != "reverse") p.push_back(t);
    }
    ASSERT_EQ(p.size(), s.size());
    int64_t changes = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      EXPECT_EQ(p[i]["target"], s[i]["target"]);
      for (const char* k : {"read", "inserted", "updated", "deleted", "rejected", "collisions", "orphans_kept",
                            "duplicates_dropped", "foreign_rows_preserved"}) {
        EXPECT_EQ(p[i]["counts"][k], s[i]["counts"][k]) << strategy << " " << p[i]["target"] << " " << k;
      }
      EXPECT_TRUE(p[i]["planned"].get<bool>());
      changes += s[i]["counts"]["inserted"].get<int64_t>() + s[i]["counts"]["updated"].get<int64_t>() +
                 s[i]["counts"]["deleted"].get<int64_t>();
    }
    EXPECT_GT(changes, 0) << "the scenario must have something to do";
  }
};

TEST_F(Plan, MergePredictionEqualsTheSync) { expect_plan_matches_sync("merge"); }

TEST_F(Plan, SwapPredictionEqualsTheSync) { expect_plan_matches_sync("swap"); }

TEST_F(Plan, ShowsTrippedGuardsWithoutFailing) {
  TempDatabase db(Servers::target(), "plan");
  recreate_from_template(db.name());
  src().exec("DELETE FROM mbremdetail");
  CliResult plan = cli({"plan", "--config", config_for(db.url()), "--json"});
  EXPECT_EQ(plan.exit_code, 0) << plan.out;
  bool tripped = false;
  nlohmann::json summary = summary_of(plan.out);
  for (const auto& t : summary["tables"]) {
    if (t["target"] == "remdetail") {
      tripped = !t["guard"]["tripped"].is_null();
      EXPECT_GT(t["guard"]["would_delete"].get<int64_t>(), 0);
    }
  }
  EXPECT_TRUE(tripped) << plan.out << plan.err;
  CliResult sync = cli({"sync", "--config", config_for(db.url())});
  EXPECT_EQ(sync.exit_code, 9) << sync.out;
}

}  // namespace
}  // namespace stagesync::testing
