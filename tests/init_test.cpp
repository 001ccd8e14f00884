// `stagesync init` (issue 15): a configuration written from the two catalogs
// must check clean and sync with no hand edit, say what it guessed, quote odd
// names so check and sync find them, come out byte-identical twice, cost a
// fixed number of round trips per server, and write nothing on either side.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "demo/reference_data.h"
#include "init/catalog_reader.h"
#include "init/init_run.h"
#include "run/check_run.h"
#include "support/sync_fixture.h"
#include "support/tcp_proxy.h"

namespace stagesync::testing {
namespace {

const config::Table* find_table(const config::Config& cfg, const std::string& name) {
  for (const auto& t : cfg.tables)
    if (t.name == name) return &t;
  return nullptr;
}

std::string refs_text(const config::Table& t) {
  std::vector<std::string> out;
  for (const auto& r : t.references) {
    out.push_back(r.parent + "(" + std::to_string(static_cast<int>(r.on_orphan)) + "):" + r.columns.front());
  }
  std::sort(out.begin(), out.end());
  std::string s;
  for (const auto& x : out) s += x + " ";
  return s;
}

class Init : public SyncFixture {
 protected:
  std::string run_init(const std::vector<std::string>& tables = {}) {
    init::InitOptions o;
    o.source_url = source_url();
    o.target_url = target_url();
    o.tables = tables;
    return init::run_init(o).yaml;
  }

  // Everything a write could change, on one database: its relations (a CREATE, DROP, TRUNCATE or
  // rewrite changes a relfilenode), its schemas, and every row version of every user table.
  static std::string fingerprint(pg::Connection& db) {
    std::string out = db.exec(
                            "SELECT md5(string_agg(c.oid || ':' || c.relname || ':' || c.relfilenode, ',' ORDER BY "
                            "c.oid)) FROM pg_class c")
                          .text(0, 0);
    out += db.exec("SELECT md5(string_agg(nspname, ',' ORDER BY oid)) FROM pg_namespace").text(0, 0);
    pg::Result tables = db.exec(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON "
        "n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY 1");
    for (int i = 0; i < tables.rows(); ++i) {
      out += db.exec("SELECT coalesce(md5(string_agg(ctid::text || xmin::text, ',' ORDER BY ctid)), '-') FROM " +
                     tables.text(i, 0))
                 .text(0, 0);
    }
    return out;
  }

  void check_clean(const std::string& path) {
    run::CheckReport r = run::run_check(config::load_config(path), {});
    std::string all;
    for (const auto& p : r.problems) all += p + "\n";
    EXPECT_TRUE(r.problems.empty()) << all;
  }
};

// The reference schemas of SPEC section 3: the file checks clean, agrees with the demo's hand-written one on
// keys, generated, skip, owner, duplicates and target names, syncs, and a second sync writes nothing. Read
// through counting proxies: two round trips per server for the catalogs, one more on the source for the key
// repetitions; nothing is written on either server; the same file twice.
TEST_F(Init, ReferenceSchemasGiveAFileThatChecksAndSyncsWithNoHandEdit) {
  for (const auto& sql : demo::desktop_schema_sql()) src().exec(sql);
  for (const auto& sql : demo::desktop_data_sql(0.02, 11)) src().exec(sql);
  for (const auto& sql : demo::cloud_schema_sql()) tgt().exec(sql);
  for (const auto& sql : demo::cloud_mobile_rows_sql(11)) tgt().exec(sql);

  TcpProxy source_proxy(Servers::source().port()), target_proxy(Servers::target().port());
  auto via = [](const TcpProxy& p, const std::string& db) {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(p.port()) + "/" + db;
  };
  std::string before_source = fingerprint(src()), before_target = fingerprint(tgt());
  std::string path = write_config("");  // a temp file name the fixture removes; init overwrites it
  source_proxy.reset_counters();
  target_proxy.reset_counters();
  CliResult r = cli({"init", "--source", via(source_proxy, src_db_.name()), "--target",
                     via(target_proxy, tgt_db_.name()), "--output", path, "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  int64_t source_trips = source_proxy.round_trips(), target_trips = target_proxy.round_trips();
  std::cout << "init round trips: source " << source_trips << ", target " << target_trips << "\n";
  // Connection start-up, then the table list, then one pipeline with every fact of every table (and on the
  // source one more for the key repetitions): the same for 15 tables or 1500.
  EXPECT_LE(target_trips, 4);
  EXPECT_LE(source_trips, 5);
  EXPECT_EQ(fingerprint(src()), before_source) << "init wrote on the source";
  EXPECT_EQ(fingerprint(tgt()), before_target) << "init wrote on the target";
  EXPECT_NE(r.err.find("mbreminder -> reminder: guessed, sure"), std::string::npos) << r.err;

  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  std::string yaml = text.str();
  // Directly, twice: byte-identical; through the proxies, the same but for the ports.
  std::string direct = run_init();
  EXPECT_EQ(run_init(), direct);
  for (auto [from, to] : {std::pair{source_proxy.port(), Servers::source().port()},
                          std::pair{target_proxy.port(), Servers::target().port()}}) {
    std::string port = ":" + std::to_string(from);
    for (size_t at = yaml.find(port); at != std::string::npos; at = yaml.find(port, at + 1)) {
      yaml.replace(at, port.size(), ":" + std::to_string(to));
    }
  }
  EXPECT_EQ(yaml, direct);

  config::Config mine = config::parse_config(direct, "init");
  config::Config hand = config::parse_config(demo::demo_config_yaml(source_url(), target_url()), "demo");
  EXPECT_EQ(mine.owner.column, hand.owner.column);
  EXPECT_EQ(mine.owner.value, hand.owner.value);
  ASSERT_EQ(mine.tables.size(), hand.tables.size()) << direct;
  for (const auto& h : hand.tables) {
    const config::Table* m = find_table(mine, h.name);
    ASSERT_TRUE(m) << h.name << " missing:\n" << direct;
    EXPECT_EQ(m->target, h.target) << h.name;
    EXPECT_EQ(m->key, h.key) << h.name;
    EXPECT_EQ(m->key_none, h.key_none) << h.name;
    EXPECT_EQ(m->generated, h.generated) << h.name;
    EXPECT_EQ(m->skip, h.skip) << h.name;
    EXPECT_EQ(m->owner.has_value(), h.owner.has_value()) << h.name;
    EXPECT_EQ(m->duplicates.keep_newest, h.duplicates.keep_newest) << h.name;
    EXPECT_EQ(m->duplicates.by, h.duplicates.by) << h.name;
    // The target declares one foreign key (remdetail -> reminder), which both files judge `skip`; the
    // hand-written file adds references the catalogs cannot show.
    for (const auto& ref : m->references) {
      EXPECT_NE(refs_text(h).find(ref.parent + "(1):" + ref.columns.front()), std::string::npos) << h.name;
    }
  }
  EXPECT_EQ(refs_text(*find_table(mine, "mbremdetail")), "mbreminder(1):rem_id ");
  // The hand-written file's other references are offered as commented hints when their columns are named like
  // the parent's whole key; jobtasks -> jobshead (job_id), by the leading key column, is not guessed.
  int hinted = 0;
  for (const auto& h : hand.tables) {
    for (const auto& ref : h.references) {
      if (ref.on_orphan != config::OrphanPolicy::Keep) continue;
      std::string cols;
      for (const auto& c : ref.columns) cols += (cols.empty() ? "" : ", ") + c;
      std::string hint = "- { columns: [" + cols + "], parent: " + ref.parent + ", on_orphan: keep }";
      EXPECT_NE(direct.find(hint), std::string::npos) << h.name << ": " << hint;
      ++hinted;
    }
  }
  EXPECT_EQ(hinted, 7);
  // Uncommented, the hints are a configuration that checks clean too.
  std::string all_hints;
  std::istringstream lines(direct);
  for (std::string l; std::getline(lines, l);) {
    for (const char* from : {"    # references:", "    #   - { columns:", "      # - { columns:"}) {
      if (l.rfind(from, 0) == 0)
        l = (std::string(from) == "    # references:" ? "    references:" : "      - { columns:") +
            l.substr(std::string(from).size());
    }
    all_hints += l + "\n";
  }
  config::Config hinted_cfg = config::parse_config(all_hints, "hints");
  ASSERT_EQ(hinted_cfg.tables.size(), hand.tables.size());
  size_t references = 0;
  for (const auto& t : hinted_cfg.tables) references += t.references.size();
  EXPECT_GE(references, 20u) << all_hints;
  check_clean(write_config(all_hints));
  EXPECT_NE(direct.find("#   - { column: client_id, from: jobshead, match: [job_id], take: client_id }"),
            std::string::npos)
      << "the lookup hint for jobtasks.client_id";
  EXPECT_NE(direct.find("# - name: workdiary"), std::string::npos) << "mobile-owned tables are left commented out";
  EXPECT_NE(direct.find("#   - name: workdiary\n#     into: workdiary\n#     key: [wd_id]\n#     rows: { owner: M }"),
            std::string::npos)
      << "and offered as reverse entries";

  std::string plain = write_config(direct);
  check_clean(plain);
  CliResult plan = cli({"plan", "--config", plain});
  EXPECT_EQ(plan.exit_code, 0) << plan.out << plan.err;
  report::RunSummary first = sync(plain);
  EXPECT_EQ(first.exit_code, 0) << first.error;
  EXPECT_GT(count("SELECT count(*) FROM jobtasks WHERE source = 'D'"), 100);
  EXPECT_GT(count("SELECT count(*) FROM remdetail WHERE source = 'D'"), 5);
  std::string jobs = versions("jobshead"), tasks = versions("jobtasks"), checklist = versions("taskchecklist");
  report::RunSummary second = sync(plain);
  EXPECT_EQ(second.exit_code, 0) << second.error;
  EXPECT_EQ(versions("jobshead"), jobs);
  EXPECT_EQ(versions("jobtasks"), tasks);
  EXPECT_EQ(versions("taskchecklist"), checklist);
  EXPECT_EQ(verify(plain).exit_code, 0);
  EXPECT_EQ(count("SELECT count(*) FROM climaster WHERE source = 'M'"), 13) << "mobile rows untouched";
}

// Odd schemas: a target table without a primary key (a target unique index, a source unique index, nothing),
// a target primary key the target generates, renamed tables (by prefix: synced; by columns only: offered
// commented out), target triggers, a
// foreign key, mixed-case, reserved-word and spaced identifiers, and tables on one side only.
TEST_F(Init, OddSchemasAreDecidedExplainedQuotedAndSynced) {
  for (const char* sql : {
           R"(CREATE TABLE "Order" ("Id" integer, "Customer Name" text, "select" text, "Legacy: note" text))",
           "CREATE UNIQUE INDEX ON \"Order\" (\"Id\")",
           R"(CREATE TABLE tbl_lines (line_id integer, "Id" integer, qty integer, note text, stamp timestamptz))",
           "CREATE TABLE items (sku text, name text, legacy_flag boolean, \"line\nbreak\" integer)",
           "CREATE TABLE nopk (code text, label text)",
           "CREATE UNIQUE INDEX nopk_code ON nopk (code)",
           "CREATE TABLE loose (a integer, b text)",
           R"(CREATE TABLE "user" ("null" integer, "group" text))",
           "CREATE TABLE staffers (staff_no integer, full_name text, phone text, email text)",
           "CREATE TABLE legacy_only (x integer)",
           R"(INSERT INTO "Order" VALUES (1, 'Zoë Müller', 'a:b', 'x'), (2, 'O''Brien', NULL, NULL))",
           "INSERT INTO tbl_lines VALUES (10, 1, 2, 'first', now()), (11, 2, 1, 'x', now()), (12, 99, 5, 'orphan', "
           "now())",
           "INSERT INTO items VALUES ('A-1', 'Bolt', true), ('B-2', 'Nut', false)",
           "INSERT INTO nopk VALUES ('k1', 'one'), ('k2', 'two')",
           "INSERT INTO loose VALUES (1, 'x'), (1, 'x'), (2, 'y')",
           R"(INSERT INTO "user" VALUES (1, 'admins'))",
           "INSERT INTO staffers VALUES (1, 'Ann', '1', 'a@x'), (2, 'Bob', '2', 'b@x')",
       }) {
    src().exec(sql);
  }
  for (const char* sql : {
           R"(CREATE TABLE "Order" ("Id" integer PRIMARY KEY, "Customer Name" text, "select" text))",
           R"(CREATE TABLE lines (line_id integer PRIMARY KEY, "Id" integer REFERENCES "Order" ("Id"), qty integer,
                note text, stamp timestamptz))",
           R"(CREATE FUNCTION lines_touch() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN NEW.stamp := now(); NEW.note := lower(NEW.note); RETURN NEW; END $$)",
           "CREATE TRIGGER lines_touch BEFORE INSERT OR UPDATE ON lines FOR EACH ROW EXECUTE FUNCTION lines_touch()",
           "CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sku text NOT NULL UNIQUE, name "
           "text)",
           "CREATE TABLE nopk (code text, label text, n serial)",
           "CREATE TABLE loose (a integer, b text)",
           R"(CREATE TABLE "user" ("null" integer PRIMARY KEY, "group" text))",
           "CREATE TABLE employees (staff_no integer PRIMARY KEY, full_name text, phone text, email text)",
           "CREATE TABLE cloud_only (y integer)",
       }) {
    tgt().exec(sql);
  }
  std::string before_source = fingerprint(src()), before_target = fingerprint(tgt());
  std::string yaml = run_init();
  EXPECT_EQ(run_init(), yaml) << "deterministic";
  EXPECT_EQ(fingerprint(src()), before_source);
  EXPECT_EQ(fingerprint(tgt()), before_target);

  config::Config cfg = config::parse_config(yaml, "init");
  auto table = [&](const std::string& name) {
    const config::Table* t = find_table(cfg, name);
    EXPECT_TRUE(t) << name << " missing:\n" << yaml;
    return t ? *t : config::Table{};
  };
  EXPECT_EQ(table("Order").key, std::vector<std::string>{"Id"});
  EXPECT_EQ(table("tbl_lines").target, "lines");
  EXPECT_EQ(table("tbl_lines").compare_ignore, std::vector<std::string>{"stamp"});
  ASSERT_EQ(table("tbl_lines").references.size(), 1u) << yaml;
  EXPECT_EQ(table("tbl_lines").references[0].parent, "Order");
  EXPECT_EQ(table("tbl_lines").references[0].on_orphan, config::OrphanPolicy::Skip);
  EXPECT_NE(yaml.find("sets note from the row's"), std::string::npos) << yaml;
  EXPECT_EQ(table("items").key, std::vector<std::string>{"sku"}) << "the generated primary key is passed over";
  EXPECT_EQ(table("items").generated, std::vector<std::string>{"id"});
  EXPECT_EQ(table("items").skip, (std::vector<std::string>{"legacy_flag", "line\nbreak"}))
      << "a newline in a name is escaped, in the entry and in its comment";
  EXPECT_EQ(table("nopk").key, std::vector<std::string>{"code"}) << "from the source's unique index";
  EXPECT_EQ(table("nopk").generated, std::vector<std::string>{"n"}) << "a serial column";
  EXPECT_NE(yaml.find("generated: [\"n\"]"), std::string::npos) << "n is a YAML 1.1 boolean unquoted";
  EXPECT_TRUE(table("loose").key_none);
  EXPECT_NE(yaml.find("no usable key: neither table has a primary key or unique index"), std::string::npos);
  EXPECT_EQ(table("user").key, std::vector<std::string>{"null"}) << "quoted, else YAML reads a null";
  EXPECT_EQ(table("Order").skip, std::vector<std::string>{"Legacy: note"});
  // A rename guessed from the columns alone is offered commented out: written into the wrong table, rows
  // would replace that table's own.
  EXPECT_EQ(find_table(cfg, "staffers"), nullptr);
  EXPECT_NE(yaml.find("  # - name: staffers\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("    # target: employees\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("guessed, likely"), std::string::npos) << "the rename by columns says how sure it is";
  EXPECT_EQ(find_table(cfg, "legacy_only"), nullptr);
  EXPECT_NE(yaml.find("# - name: legacy_only"), std::string::npos);
  EXPECT_NE(yaml.find("cloud_only: no source table"), std::string::npos);
  EXPECT_TRUE(cfg.owner.none) << "no shared owner column in these tables";
  EXPECT_NE(yaml.find("# no owner column found"), std::string::npos) << "and the file says what that means";
  // Names that YAML would read differently are quoted; mixed case stays plain (the loader keeps case).
  EXPECT_NE(yaml.find("key: [\"null\"]"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("skip: [\"Legacy: note\"]"), std::string::npos) << yaml;

  std::string path = write_config(yaml);
  check_clean(path);
  report::RunSummary s = sync(path);
  EXPECT_EQ(s.exit_code, 0) << s.error;
  EXPECT_EQ(count("SELECT count(*) FROM \"Order\" WHERE \"Customer Name\" = 'O''Brien'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM lines"), 2) << "the orphan line is set aside (skip)";
  EXPECT_EQ(count("SELECT count(*) FROM items WHERE id IS NOT NULL"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM loose"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM \"user\""), 1);
  EXPECT_EQ(count("SELECT count(*) FROM employees"), 0);
  // The row-dependent trigger (lower(note)) is only warned about: the notes here are already lower case.
  std::string lines = versions("lines");
  EXPECT_EQ(sync(path).exit_code, 0);
  EXPECT_EQ(versions("lines"), lines) << "the trigger-set column does not make a second run rewrite rows";
}

// The seam's promise: its sessions are read-only, whatever the caller sends afterwards.
TEST_F(Init, CatalogSessionsAreReadOnly) {
  src().exec("CREATE TABLE t (a integer)");
  pg::Connection conn = src_db_.connect();
  init::PostgresCatalogReader reader(conn);
  ASSERT_EQ(reader.read().tables.size(), 1u);
  EXPECT_EQ(conn.exec("SHOW default_transaction_read_only").text(0, 0), "on");
  EXPECT_THROW(conn.exec("INSERT INTO t VALUES (1)"), pg::Error);
}

// The command line: passwords leave the URL for password_env, a column on every table is offered as a
// commented scope, --source with --sqlite is refused, an existing file is not overwritten, an unknown
// --tables name is a usage error.
TEST_F(Init, CommandLineKeepsPasswordsOutAndRefusesWhatItCannotDo) {
  src().exec("CREATE TABLE clients (id integer, org_id integer, name text)");
  src().exec("CREATE TABLE jobs (id integer, org_id integer)");
  tgt().exec("CREATE TABLE clients (id integer PRIMARY KEY, org_id integer, name text)");
  tgt().exec("CREATE TABLE jobs (id integer PRIMARY KEY, org_id integer)");
  std::string with_password = "postgresql://postgres:S3cretPw@127.0.0.1:" + std::to_string(Servers::source().port()) +
                              "/" + src_db_.name() + "?application_name=x";
  std::string target_kv = "host=127.0.0.1 port=" + std::to_string(Servers::target().port()) +
                          " dbname=" + tgt_db_.name() + " user=postgres password='An0ther pw'";
  CliResult r = cli({"init", "--source", with_password, "--target", target_kv});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("S3cretPw"), std::string::npos);
  EXPECT_EQ(r.out.find("An0ther"), std::string::npos);
  EXPECT_EQ((r.out + r.err).find("S3cretPw"), std::string::npos);
  EXPECT_NE(r.out.find("password_env: STAGESYNC_SOURCE_PASSWORD"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("password_env: STAGESYNC_TARGET_PASSWORD"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("set STAGESYNC_SOURCE_PASSWORD"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("?application_name=x\""), std::string::npos) << "the rest of the URL is kept: " << r.out;
  EXPECT_NE(r.out.find("\n# scope: { org_id: <value> }\n"), std::string::npos) << "org_id is on every table: " << r.out;

  CliResult both = cli({"init", "--source", source_url(), "--sqlite", "/tmp/desktop.db", "--target", target_url()});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE((both.out + both.err).find("not both"), std::string::npos) << both.err;

  std::string existing = write_config("# mine\n");
  CliResult again = cli({"init", "--source", source_url(), "--target", target_url(), "--output", existing});
  EXPECT_EQ(again.exit_code, 2);
  std::stringstream kept;
  kept << std::ifstream(existing).rdbuf();
  EXPECT_EQ(kept.str(), "# mine\n");

  CliResult unknown = cli({"init", "--source", source_url(), "--target", target_url(), "--tables", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE((unknown.out + unknown.err).find("'nosuch' is not a table"), std::string::npos);
}

std::string file_bytes(const std::string& path) {
  std::stringstream text;
  text << std::ifstream(path, std::ios::binary).rdbuf();
  return text.str();
}

// A SQLite desktop file (issue 14), written here as its application would, and a target whose tables lack
// keys the file has (a primary key, a unique index), have keys the file lacks (with repeated values, and a
// COLLATE NOCASE column whose values differ only in case), neither, and one renamed. `init --sqlite` drafts
// the keys from whichever side has them, counts repetitions with SQL SQLite runs (as the target compares:
// 'x' and 'X' are two keys), writes the path relative to the configuration when the file lies under its
// folder, leaves the file byte for byte as it was; the file checks clean and syncs as written. A missing
// file and a file that is not a database are usage errors naming the path. The target costs the round trips
// it costs with a PostgreSQL source.
TEST_F(Init, SqliteDesktopFileGivesAFileThatChecksAndSyncs) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("stagesync-initsqlite-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  fs::create_directories(dir / "conf");
  struct Cleanup {
    fs::path dir;
    ~Cleanup() { fs::remove_all(dir); }
  } cleanup{dir};
  std::string db = (dir / "data" / "desktop.db").string();
  {
    sqlite3* d = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &d), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(
        d,
        "CREATE TABLE clients (client_id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);"
        "CREATE TABLE products (sku TEXT NOT NULL, title TEXT, price NUMERIC);"
        "CREATE UNIQUE INDEX products_sku ON products (sku);"
        "CREATE TABLE visits (visit_no INTEGER, client_id INTEGER, note TEXT, updated_at DATETIME);"
        "CREATE TABLE codes (code TEXT COLLATE NOCASE, label TEXT);"
        "CREATE TABLE log (at TEXT, line TEXT);"
        "CREATE TABLE tbl_staff (staff_id INTEGER, full_name TEXT, legacy TEXT);"
        "CREATE VIEW v_clients AS SELECT * FROM clients;"
        "CREATE VIRTUAL TABLE notes_fts USING fts5(body);"
        "INSERT INTO clients VALUES (1, 'Ann', 'Pune'), (2, 'Bob', NULL);"
        "INSERT INTO products VALUES ('A-1', 'Bolt', 1.5), ('B-2', 'Nut', 0.25);"
        "INSERT INTO visits VALUES (10, 1, 'first', '2024-01-01 10:00:00'), (10, 1, 'second', '2024-01-02 10:00:00'),"
        "  (11, 2, 'only', '2024-01-01 09:00:00'), (NULL, 2, 'no key', '2024-01-01 08:00:00');"
        "INSERT INTO codes VALUES ('x', 'lower'), ('X', 'upper');"
        "INSERT INTO log VALUES ('a', 'x'), ('a', 'x'), ('b', 'y');"
        "INSERT INTO tbl_staff VALUES (1, 'Ann', 'old'), (2, 'Bob', 'old');"
        "INSERT INTO notes_fts VALUES ('hello');",
        nullptr, nullptr, &err);
    std::string why = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(d);
    ASSERT_EQ(rc, SQLITE_OK) << why;
  }
  for (const char* sql : {
           "CREATE TABLE clients (client_id integer, name text NOT NULL, city text)",
           "CREATE TABLE products (sku text, title text, price numeric(10,2))",
           "CREATE TABLE visits (visit_no integer PRIMARY KEY, client_id integer, note text, updated_at timestamp)",
           "CREATE TABLE codes (code text PRIMARY KEY, label text)",
           "CREATE TABLE log (at text, line text)",
           "CREATE TABLE staff (staff_id integer PRIMARY KEY, full_name text)",
       }) {
    tgt().exec(sql);
  }
  std::string before = file_bytes(db);
  std::string path = (dir / "stagesync.yaml").string();
  CliResult r = cli({"init", "--sqlite", db, "--target", target_url(), "--output", path});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(file_bytes(db), before) << "init wrote to the desktop file";
  EXPECT_FALSE(fs::exists(db + "-journal"));
  EXPECT_NE(r.err.find("tbl_staff -> staff: guessed, sure"), std::string::npos) << r.err;
  std::string yaml = file_bytes(path);
  EXPECT_NE(yaml.find("source:\n  sqlite: \"data/desktop.db\"\n"), std::string::npos) << "relative: " << yaml;
  EXPECT_NE(yaml.find("notes_fts: a virtual table (fts5)"), std::string::npos) << yaml;
  EXPECT_EQ(yaml.find("v_clients"), std::string::npos) << "views are not offered";
  EXPECT_EQ(yaml.find("notes_fts_"), std::string::npos) << "nor a virtual table's storage";

  config::Config cfg = config::load_config(path);
  EXPECT_EQ(cfg.source.sqlite, db);
  auto table = [&](const std::string& name) {
    const config::Table* t = find_table(cfg, name);
    EXPECT_TRUE(t) << name << " missing:\n" << yaml;
    return t ? *t : config::Table{};
  };
  EXPECT_EQ(table("clients").key, std::vector<std::string>{"client_id"}) << "the file's primary key";
  EXPECT_EQ(table("products").key, std::vector<std::string>{"sku"}) << "the file's unique index";
  EXPECT_NE(yaml.find("the source's unique index products_sku (sku)"), std::string::npos) << yaml;
  EXPECT_EQ(table("visits").key, std::vector<std::string>{"visit_no"}) << "the target's primary key";
  EXPECT_TRUE(table("visits").duplicates.keep_newest) << "visit 10 repeats on the file: " << yaml;
  EXPECT_EQ(table("visits").duplicates.by, "updated_at");
  EXPECT_NE(yaml.find("1 key value(s) (visit_no) occur on more than one source row"), std::string::npos) << yaml;
  EXPECT_EQ(table("codes").key, std::vector<std::string>{"code"});
  EXPECT_FALSE(table("codes").duplicates.keep_newest) << "'x' and 'X' are two keys on the target: " << yaml;
  EXPECT_EQ(yaml.find("(code) occur on more than one"), std::string::npos) << yaml;
  EXPECT_TRUE(table("log").key_none);
  EXPECT_EQ(table("tbl_staff").target, "staff");
  EXPECT_EQ(table("tbl_staff").key, std::vector<std::string>{"staff_id"});
  EXPECT_EQ(table("tbl_staff").skip, std::vector<std::string>{"legacy"});
  EXPECT_EQ(cfg.tables.size(), 6u) << yaml;

  CliResult check = cli({"check", "--config", path});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  CliResult synced = cli({"sync", "--config", path});
  ASSERT_EQ(synced.exit_code, 0) << synced.out << synced.err;
  EXPECT_EQ(count("SELECT count(*) FROM clients"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM products WHERE sku = 'B-2' AND price = 0.25"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM visits"), 2) << "visit 10 once, and the row without a key set aside";
  EXPECT_EQ(count("SELECT count(*) FROM visits WHERE visit_no = 10 AND note = 'second'"), 1) << "the newest";
  EXPECT_EQ(count("SELECT count(*) FROM codes"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM log"), 3);
  EXPECT_EQ(count("SELECT count(*) FROM staff WHERE full_name = 'Bob'"), 1);
  EXPECT_EQ(file_bytes(db), before) << "sync wrote to the desktop file";

  // The same file twice; a configuration in a folder the file is not under names it by its absolute path,
  // and so does the one printed to standard output.
  init::InitOptions o;
  o.sqlite_path = db;
  o.target_url = target_url();
  o.output = path;
  EXPECT_EQ(init::run_init(o).yaml, yaml);
  // The target is read as with a PostgreSQL source: start-up, the table list, one pipeline.
  TcpProxy target_proxy(Servers::target().port());
  target_proxy.reset_counters();
  CliResult elsewhere =
      cli({"init", "--sqlite", db, "--target",
           "postgresql://postgres@127.0.0.1:" + std::to_string(target_proxy.port()) + "/" + tgt_db_.name()});
  ASSERT_EQ(elsewhere.exit_code, 0) << elsewhere.err;
  std::cout << "init --sqlite: target round trips " << target_proxy.round_trips() << "\n";
  EXPECT_LE(target_proxy.round_trips(), 4);
  EXPECT_NE(elsewhere.out.find("  sqlite: \"" + db + "\"\n"), std::string::npos) << elsewhere.out;
  EXPECT_EQ(init::sqlite_path_in_config(db, (dir / "conf" / "stagesync.yaml").string()), db);
  EXPECT_EQ(init::sqlite_path_in_config(db, (dir / "data" / "x.yaml").string()), "desktop.db");

  std::string missing = (dir / "data" / "nosuch.db").string();
  CliResult none = cli({"init", "--sqlite", missing, "--target", target_url()});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE((none.out + none.err).find("--sqlite: " + missing + ": no such file"), std::string::npos) << none.out;
  std::string text = (dir / "data" / "notes.txt").string();
  std::ofstream(text) << "Notes, not a database. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
                         "eiusmod tempor incididunt ut labore et dolore magna aliqua.\n";
  CliResult not_db = cli({"init", "--sqlite", text, "--target", target_url()});
  EXPECT_EQ(not_db.exit_code, 2);
  EXPECT_NE((not_db.out + not_db.err).find("--sqlite: " + text + " is not a SQLite database"), std::string::npos)
      << not_db.out;
  EXPECT_EQ(not_db.out.find("tables:"), std::string::npos) << "no configuration is printed";
}

}  // namespace
}  // namespace stagesync::testing
