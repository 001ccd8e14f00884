#include "support/scenario.h"

#include <chrono>
#include <thread>

#include "demo/reference_data.h"

namespace stagesync::testing {

TableState snapshot(pg::Connection& db) {
  db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
  pg::Result tables = db.exec(
      "SELECT c.relname, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_class c "
      "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
      "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attidentity = '' "
      "AND coalesce(pg_get_expr(d.adbin, d.adrelid), '') NOT LIKE '%now()%' GROUP BY c.relname ORDER BY 1");
  TableState s;
  for (int i = 0; i < tables.rows(); ++i) {
    std::string name = tables.text(i, 0), cols = tables.text(i, 1);
    std::string row = "ROW(" + cols + ")::text";
    s[name] = db.exec("SELECT count(*) || ':' || coalesce(md5(string_agg(" + row + ", E'\\n' ORDER BY " + row +
                      ")), '') FROM " + pg::ident(name))
                  .text(0, 0);
  }
  db.exec("COMMIT");
  return s;
}

void Scenario::build(double scale, const std::string& extra_yaml, const std::string& mode) {
  extra_yaml_ = extra_yaml;
  mode_ = mode;
  for (const auto& sql : demo::desktop_schema_sql()) src().exec(sql);
  for (const auto& sql : demo::desktop_data_sql(scale, 7)) src().exec(sql);
  tpl_ = std::make_unique<TempDatabase>(Servers::target(), "tpl");
  {
    pg::Connection t = tpl_->connect();
    for (const auto& sql : demo::cloud_schema_sql()) t.exec(sql);
    for (const auto& sql : demo::cloud_mobile_rows_sql(7)) t.exec(sql);
  }
  CliResult first = cli({"sync", "--config", config_for(tpl_->url())});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  for (const auto& sql : demo::desktop_changes_sql(7)) src().exec(sql);
  {
    pg::Connection t = tpl_->connect();
    before_ = snapshot(t);
  }
  TempDatabase ref(Servers::target(), "ref");
  recreate_from_template(ref.name());
  auto start = std::chrono::steady_clock::now();
  CliResult r = cli(sync_args(config_for(ref.url())));
  duration_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  pg::Connection c = ref.connect();
  after_ = snapshot(c);
  if (mode == "incremental") {
    // The run under test must really read changes only (else this is a full run again).
    ASSERT_GE(c.exec("SELECT count(*) FROM stagesync.table_runs WHERE mode_used = 'cursor' AND rows_read > 0").int64(0, 0), 3)
        << r.out;
  }
  size_t differing = 0;
  for (const auto& [table, sum] : before_) differing += after_.at(table) != sum;
  ASSERT_GE(differing, 4u) << "the run under test must change several tables";
}

std::string Scenario::config_for(const std::string& target_url) {
  return write_config(demo::demo_config_yaml(source_url(), target_url) + extra_yaml_);
}

void Scenario::recreate_from_template(const std::string& name) {
  pg::Connection a = admin(Servers::target());
  a.exec("DROP DATABASE IF EXISTS " + pg::ident(name) + " WITH (FORCE)");
  a.exec("CREATE DATABASE " + pg::ident(name) + " TEMPLATE " + pg::ident(tpl_->name()));
}

void Scenario::wait_for_backends_gone(const std::string& db) {
  pg::Connection a = admin(Servers::target());
  for (int i = 0; i < 300; ++i) {
    if (a.exec("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'stagesync'",
               std::vector<pg::Param>{db}).int64(0, 0) == 0)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL() << "a stagesync backend outlived its client by 30 s";
}

std::string Scenario::judge(pg::Connection& db, const std::string& what) {
  TableState now = snapshot(db);
  std::string outcome;
  for (const auto& [table, sum] : now) {
    bool is_before = before_.at(table) == sum, is_after = after_.at(table) == sum;
    EXPECT_TRUE(is_before || is_after) << what << ": table " << table << " is neither before nor after";
    if (is_before != is_after) {
      std::string state = is_before ? "before" : "after";
      EXPECT_TRUE(outcome.empty() || outcome == state) << what << ": tables disagree (" << table << " is " << state << ")";
      outcome = state;
    }
  }
  return outcome;
}

void Scenario::expect_clean(pg::Connection& db, const std::string& what) {
  EXPECT_EQ(db.exec("SELECT count(*) FROM pg_class WHERE relnamespace = 'stagesync'::regnamespace "
                    "AND (relname LIKE 's\\_%' OR relname LIKE 'r\\_%')").int64(0, 0), 0)
      << what << ": staging leftovers";
  EXPECT_EQ(db.exec("SELECT count(*) FROM stagesync.runs WHERE status = 'running'").int64(0, 0), 0) << what;
}

}  // namespace stagesync::testing
