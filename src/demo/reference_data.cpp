// Reference data for the demo and the benchmarks (see reference_data.h).
#include "demo/reference_data.h"
#include "demo/sqlite_desktop.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace stagesync::demo {
namespace {

// ---------------------------------------------------------------------------------------------
// SQL text helpers

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string num(long long n) { return std::to_string(n); }

// Decodes the UTF-8 sequence starting at text[i] and moves i past it.
uint32_t next_code_point(std::string_view text, size_t& i) {
  unsigned char lead = static_cast<unsigned char>(text[i++]);
  int extra = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
  uint32_t cp = extra == 0 ? lead : lead & (0x3Fu >> extra);
  for (int k = 0; k < extra && i < text.size(); ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(text[i++]) & 0x3Fu);
  }
  return cp;
}

std::string escape_code_point(uint32_t cp) {
  switch (cp) {
    case '\'': return "''";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\t': return "\\t";
    default: break;
  }
  if (cp >= 0x20 && cp < 0x7F) return std::string(1, static_cast<char>(cp));
  char buf[16];
  std::snprintf(buf, sizeof buf, cp <= 0xFFFF ? "\\u%04X" : "\\U%08X", static_cast<unsigned>(cp));
  return buf;
}

// A SQL string literal for UTF-8 text, in ASCII only: plain '...' when the text is printable ASCII
// without backslashes, else E'...' with \u escapes (which need a UTF8 database).
std::string lit(std::string_view text) {
  bool plain = std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7F && c != '\\'; });
  std::string body;
  for (size_t i = 0; i < text.size();) body += escape_code_point(next_code_point(text, i));
  return (plain ? "'" : "E'") + body + "'";
}

std::vector<std::string> lits(std::initializer_list<std::string_view> texts) {
  std::vector<std::string> out;
  for (std::string_view t : texts) out.push_back(lit(t));
  return out;
}

// Pseudo-randomness evaluated by the server: each value is a hash of (seed, stream, an input
// expression), so results do not depend on row order, parallel workers or setseed().
class Rand {
 public:
  explicit Rand(uint64_t seed) : seed_(seed) {}

  // An integer in [0, n).
  std::string below(const std::string& of, int stream, long long n) const {
    return "((" + hash(of, stream) + " % " + num(n) + ")::int)";
  }
  // True for about `percent` percent of the inputs.
  std::string chance(const std::string& of, int stream, int percent) const {
    return "(" + below(of, stream, 100) + " < " + num(percent) + ")";
  }
  // One of `items` (SQL expressions of one type).
  std::string pick(const std::string& of, int stream, const std::vector<std::string>& items) const {
    return "(ARRAY[" + join(items, ", ") + "])[1 + " + below(of, stream, static_cast<long long>(items.size())) + "]";
  }

 private:
  std::string hash(const std::string& of, int stream) const {
    int64_t key = static_cast<int64_t>(mix64(seed_ ^ mix64(static_cast<uint64_t>(stream))) >> 1);
    return "(hashint8extended((" + of + ")::int8, " + num(key) + ") & 2147483647)";
  }
  uint64_t seed_;
};

// The k-th id (k = 1, 2, ...) of a sequence where every (run+1)-th id is missing (a deleted row).
std::string gapped_id(const std::string& k, int run) { return "(" + k + " + (" + k + " - 1) / " + num(run) + ")"; }
long long gapped_max(long long count, int run) { return count + (count - 1) / run; }

std::string insert_values(const std::string& table, const std::string& columns,
                          const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::string> tuples;
  for (const auto& row : rows) tuples.push_back("(" + join(row, ", ") + ")");
  return "INSERT INTO " + table + " (" + columns + ") VALUES\n  " + join(tuples, ",\n  ");
}

// ---------------------------------------------------------------------------------------------
// Schema

struct Column {
  std::string name;
  std::string desktop;  // type on the desktop; empty: the column exists only on the target
  std::string cloud;    // type on the target; empty: the column exists only on the desktop
};

Column col(const std::string& name, const std::string& type) { return {name, type, type}; }

struct TableDef {
  std::string desktop;
  std::string cloud;
  std::vector<Column> columns;  // source, created_at and updated_at are added by the writers
  std::vector<std::string> cloud_key;
  bool desktop_timestamps = true;
};

// The forward-synced tables, parents before children.
const std::vector<TableDef>& synced_tables() {
  static const std::vector<TableDef> tables = {
      {"orgmaster", "orgmaster",
       {col("org_id", "integer"), col("org_name", "varchar(100)"), col("city", "varchar(60)"),
        col("phone", "varchar(20)")},
       {"org_id"}},
      {"locmaster", "locmaster",
       {col("org_id", "integer"), col("loc_id", "integer"), col("loc_name", "varchar(100)"), col("address", "text")},
       {"org_id", "loc_id"}},
      {"conmaster", "conmaster", {col("con_id", "integer"), col("con_name", "varchar(60)")}, {"con_id"}},
      {"climaster", "climaster",
       {col("client_id", "integer"), col("org_id", "integer"), col("loc_id", "integer"), col("con_id", "integer"),
        {"client_name", "varchar(100)", "varchar(150)"}, col("email", "varchar(100)"), col("phone", "varchar(20)"),
        col("city", "varchar(60)")},
       {"client_id"}},
      {"cliunimaster", "cliunimaster",
       {col("cliunit_id", "integer"), col("client_id", "integer"), col("unit_name", "varchar(100)"),
        col("city", "varchar(60)")},
       {"cliunit_id"}},
      {"taskmaster", "taskmaster",
       {col("task_id", "integer"), col("org_id", "integer"), col("task_name", "varchar(100)"),
        col("task_group", "varchar(40)"), col("std_minutes", "integer")},
       {"task_id"}},
      {"jobmaster", "jobmaster",
       {col("job_id", "integer"), col("org_id", "integer"), col("job_name", "varchar(100)"),
        col("job_group", "varchar(40)"), col("default_days", "integer")},
       {"job_id"}},
      {"mbstaff", "mbstaff",
       {col("staff_id", "integer"), col("org_id", "integer"), col("staff_name", "varchar(100)"),
        col("app_username", "varchar(40)"), col("app_pw", "varchar(100)"), col("active_status", "varchar(1)"),
        col("email", "varchar(100)")},
       {"staff_id"}},
      {"jobshead", "jobshead",
       {col("job_id", "integer"), col("sporg_id", "integer"), {"job_uid", "varchar(30)", "varchar(40)"},
        col("year_id", "integer"), col("client_id", "integer"), col("jobdate", "date"), col("targetdate", "date"),
        col("work_desc", "text"), col("job_status", "varchar(20)"), {"jctincharge", "integer", ""}},
       {"job_id", "sporg_id"}},
      {"jobtasks", "jobtasks",
       {{"jt_id", "integer", "bigint GENERATED BY DEFAULT AS IDENTITY"}, col("job_id", "integer"),
        col("task_id", "integer"), {"client_id", "", "integer"}, col("staff_id", "integer"),
        col("task_status", "varchar(20)"), col("task_date", "date"), col("completed_date", "date"),
        col("minutes", "integer"), {"actual_hours", "numeric(8,2)", "numeric(10,2)"}, col("task_notes", "text")},
       {"job_id", "task_id"}},
      {"taskchecklist", "taskchecklist",
       {{"tc_id", "integer", "bigint GENERATED BY DEFAULT AS IDENTITY"}, col("job_id", "integer"),
        col("task_id", "integer"), col("checklistdesc", "varchar(200)"), col("checkliststatus", "varchar(1)"),
        col("checkdate", "date")},
       {"tc_id"},
       false},
      {"mbreminder", "reminder",
       {col("rem_id", "integer"), col("staff_id", "integer"), col("client_id", "integer"), col("job_id", "integer"),
        col("remdate", "date"), col("remtitle", "varchar(120)"), col("remnotes", "text"),
        col("remstatus", "varchar(20)"), {"synced_by", "", "text"}},
       {"rem_id"}},
      {"mbremdetail", "remdetail",
       {col("remdetid", "integer"), col("rem_id", "integer"), col("staff_id", "integer"), col("remdetdate", "date"),
        col("remdetnotes", "text"), col("remdetstatus", "varchar(20)")},
       {"remdetid"}},
  };
  return tables;
}

// The mobile-owned tables; both sides have every column, source included.
const std::vector<TableDef>& mobile_tables() {
  static const std::vector<TableDef> tables = {
      {"workdiary", "workdiary",
       {{"wd_id", "bigint", "bigint GENERATED BY DEFAULT AS IDENTITY"}, col("staff_id", "integer"),
        col("client_id", "integer"), col("job_id", "integer"), col("task_id", "integer"), col("date", "date"),
        // The desktop keeps the times as timestamps on the row's date (reverse's `convert:`).
        {"timefrom", "timestamp", "time"}, {"timeto", "timestamp", "time"}, col("minutes", "integer"), col("tasknotes", "text")},
       {"wd_id"}},
      {"learequest", "learequest",
       {col("learequest_id", "integer"), col("staff_id", "integer"), col("fromdate", "date"), col("todate", "date"),
        col("leavetype", "varchar(20)"), col("reason", "text"), col("approval_status", "varchar(20)")},
       {"learequest_id"}},
  };
  return tables;
}

std::string create_table(const std::string& name, std::vector<std::string> lines) {
  return "CREATE TABLE " + name + " (\n  " + join(lines, ",\n  ") + "\n)";
}

std::vector<std::string> desktop_table_sql(const TableDef& t, bool mobile) {
  std::vector<std::string> lines;
  for (const Column& c : t.columns) {
    if (!c.desktop.empty()) lines.push_back(c.name + " " + c.desktop);
  }
  if (mobile) lines.push_back("source char(1)");
  if (mobile || t.desktop_timestamps) {
    lines.push_back("created_at timestamp without time zone");
    lines.push_back("updated_at timestamp without time zone");
  }
  std::vector<std::string> out = {create_table(t.desktop, lines)};
  if (!mobile && t.desktop_timestamps) {
    out.push_back("CREATE TRIGGER " + t.desktop + "_touch BEFORE INSERT OR UPDATE ON " + t.desktop +
                  " FOR EACH ROW EXECUTE FUNCTION touch_timestamps()");
  }
  return out;
}

std::string cloud_table_sql(const TableDef& t, char default_source) {
  std::vector<std::string> lines;
  for (const Column& c : t.columns) {
    if (!c.cloud.empty()) lines.push_back(c.name + " " + c.cloud);
  }
  lines.push_back("source char(1) NOT NULL DEFAULT '" + std::string(1, default_source) + "'");
  lines.push_back("created_at timestamptz DEFAULT now()");
  lines.push_back("updated_at timestamptz DEFAULT now()");
  lines.push_back("PRIMARY KEY (" + join(t.cloud_key, ", ") + ")");
  return create_table(t.cloud, lines);
}

// The cloud's trigger function, as the real schema writes it.
const char* kCloudTouchFunction = R"(CREATE FUNCTION update_updated_at_column() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END;
$$)";

std::string cloud_touch_trigger(const TableDef& t) {
  return "CREATE TRIGGER update_" + t.cloud + "_updated_at BEFORE UPDATE ON " + t.cloud +
         " FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()";
}

const char* kTouchFunction = R"(CREATE FUNCTION touch_timestamps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.created_at := coalesce(NEW.created_at, localtimestamp);
    NEW.updated_at := coalesce(NEW.updated_at, NEW.created_at);
  ELSE
    NEW.updated_at := localtimestamp;
  END IF;
  RETURN NEW;
END
$$)";

// ---------------------------------------------------------------------------------------------
// Vocabulary (non-ASCII on purpose: the real data has it)

std::vector<std::string> first_names() {
  return lits({"Aarav", "Priya", "Zoë", "Łukasz", "Jürgen", "Søren", "José", "Chloé", "Mei", "Hiroshi", "Fatma",
               "Ananya", "Rahul", "Siân", "Ólafur", "Kavya"});
}
std::vector<std::string> last_names() {
  return lits({"Sharma", "Müller", "Kowalski", "Nguyễn", "O'Brien", "Öztürk", "García", "Łęcki", "Dubois", "田中",
               "Patel", "Iyer", "Smith", "Nørgaard", "Mehta", "Gupta"});
}
std::vector<std::string> company_suffixes() {
  return lits({"& Söhne", "Pvt Ltd", "GmbH", "Sp. z o.o.", "LLP", "株式会社", "& Co.", "Traders"});
}
std::vector<std::string> cities() {
  return lits({"Mumbai", "Pune", "Łódź", "Zürich", "São Paulo", "München", "Kraków", "Malmö", "東京", "Chennai",
               "Bengaluru", "Ahmedabad"});
}
std::vector<std::string> job_descriptions() {
  return lits({"GST return filing", "Income tax return", "Statutory audit", "TDS reconciliation",
               "Jahresabschluss für Müller & Söhne", "Bilans – oddział Łódź", "ROC annual filing", "Payroll processing",
               "Tax audit u/s 44AB", "決算書レビュー", "Stock audit \"urgent\"", "Bookkeeping"});
}
std::vector<std::string> notes() {
  return lits({"日本語メモ: 確認済み", "Zoë to review", "Client unreachable – call again", "Documents received",
               "Waiting for bank statement\nsecond line of the note", "Unterlagen fehlen (Müller)",
               "Sprawdzić fakturę – Łódź", "Path C:\\Clients\\2023 checked", "Partner's sign-off pending",
               "Done", "Tab\tseparated remark", "Need PAN copy"});
}
std::vector<std::string> checklist_items() {
  return lits({"Engagement letter signed", "Trial balance received", "Bank reconciliation", "Form 26AS matched",
               "Vollmacht liegt vor", "Podpis klienta – Zoë", "TDS certificates", "Fixed asset register",
               "確認書受領", "Final review"});
}

// ---------------------------------------------------------------------------------------------
// Desktop rows

struct Sizes {
  long long clients, units, staff, jobs, tasks, checklist, reminders, remdetails;
  static constexpr int kTaskMasters = 180, kJobMasters = 60;
  static constexpr int kClientRun = 11, kJobRun = 10, kReminderRun = 9;  // id gaps: 1 in run+1
  static constexpr int kRepeatedJob = 1, kRepeats = 23, kDuplicatedJobs = 4, kNullKeyTasks = 5;

  explicit Sizes(double scale)
      : clients(scaled(729, scale, 12)),
        units(scaled(240, scale, 5)),
        staff(scaled(16, scale, 3)),
        jobs(scaled(24568, scale, 40)),
        tasks(scaled(64711, scale, 20)),
        checklist(scaled(2894, scale, 10)),
        reminders(scaled(130, scale, 5)),
        remdetails(scaled(300, scale, 10)) {}

  long long base_jobs() const { return jobs - kRepeats - kDuplicatedJobs; }
  long long base_tasks() const { return tasks - kNullKeyTasks; }
  long long max_client_id() const { return gapped_max(clients, kClientRun); }
  long long max_job_id() const { return gapped_max(base_jobs(), kJobRun); }
  long long max_reminder_id() const { return gapped_max(reminders, kReminderRun); }

  static long long scaled(double base, double scale, long long minimum) {
    double factor = scale > 0 ? scale : 0;  // also maps NaN to 0
    return std::max(minimum, static_cast<long long>(std::llround(base * factor)));
  }
};

// A deterministic timestamp: `day` and `minute` are SQL integer expressions.
std::string stamp(const std::string& day, const std::string& minute) {
  return "(timestamp '2019-04-01 08:00' + (" + day + ") * interval '1 day' + (" + minute + ") * interval '1 minute')";
}

std::vector<std::string> org_rows() {
  const std::string cols = "org_id, org_name, city, phone, created_at, updated_at";
  return {
      insert_values("orgmaster", cols,
                    {{"1", lit("Sharma & Associates"), lit("Mumbai"), lit("+91 22 4000 1000"),
                      "'2019-04-01 09:00'", "'2024-01-10 10:00'"},
                     {"2", lit("Müller & Söhne Treuhand"), lit("München"), lit("+49 89 123456"),
                      "'2019-04-01 09:05'", "'2023-06-01 12:00'"},
                     {"3", lit("Biuro Rachunkowe Łódź"), lit("Łódź"), lit("+48 42 555 0101"),
                      "'2020-07-15 11:30'", "'2020-07-15 11:30'"}}),
      insert_values("locmaster", "org_id, loc_id, loc_name, address, created_at, updated_at",
                    {{"1", "1", lit("Head office"), lit("Nariman Point, Mumbai"), "'2019-04-01 09:00'", "'2019-04-01 09:00'"},
                     {"1", "2", lit("Pune branch"), lit("FC Road, Pune"), "'2019-04-01 09:00'", "'2022-02-01 09:00'"},
                     {"1", "3", lit("Chennai branch"), "NULL", "'2021-01-04 10:00'", "'2021-01-04 10:00'"},
                     {"2", "1", lit("Zentrale"), lit("Maximilianstraße 1, München"), "'2019-04-01 09:05'", "'2019-04-01 09:05'"},
                     {"2", "2", lit("Zürich"), lit("Bahnhofstrasse 5, Zürich"), "'2019-05-01 09:05'", "'2019-05-01 09:05'"},
                     {"3", "1", lit("Łódź"), lit("ul. Piotrkowska 100, Łódź"), "'2020-07-15 11:30'", "'2020-07-15 11:30'"},
                     {"3", "2", lit("Kraków"), lit("Rynek Główny 1, Kraków"), "'2020-07-15 11:30'", "'2023-03-03 08:00'"},
                     {"3", "3", lit("Malmö (closed)"), "NULL", "'2020-08-01 11:30'", "'2024-02-01 08:00'"}}),
  };
}

std::string constitution_rows() {
  std::vector<std::string> names = lits({"Individual", "Hindu Undivided Family", "Partnership firm",
                                         "Private limited company", "Public limited company", "LLP", "Trust",
                                         "Society", "AOP / BOI", "Government body", "Sole proprietor",
                                         "Foreign company"});
  return "INSERT INTO conmaster (con_id, con_name, created_at, updated_at)\n"
         "SELECT g, (ARRAY[" + join(names, ", ") + "])[g], " + stamp("g", "0") + ", " + stamp("g * 30", "0") +
         "\nFROM generate_series(1, " + num(static_cast<long long>(names.size())) + ") AS g";
}

std::string client_rows(const Rand& r, const Sizes& s) {
  return "INSERT INTO climaster (client_id, org_id, loc_id, con_id, client_name, email, phone, city, created_at, updated_at)\n"
         "SELECT id, 1 + " + r.below("id", 1, 3) + ", 1 + " + r.below("id", 2, 3) + ",\n"
         "  CASE WHEN " + r.chance("id", 3, 35) + " THEN 0 WHEN " + r.chance("id", 4, 23) + " THEN NULL ELSE 1 + " +
         r.below("id", 5, 12) + " END,\n"
         "  " + r.pick("id", 6, first_names()) + " || ' ' || " + r.pick("id", 7, last_names()) +
         " || CASE WHEN " + r.chance("id", 8, 30) + " THEN ' ' || " + r.pick("id", 9, company_suffixes()) + " ELSE '' END,\n"
         "  CASE WHEN " + r.chance("id", 10, 10) + " THEN NULL ELSE 'client' || id || '@example.com' END,\n"
         "  '+91 9' || lpad(" + r.below("id", 11, 1000000000) + "::text, 9, '0'), " + r.pick("id", 12, cities()) + ",\n"
         "  t0, t0 + " + r.below("id", 13, 700) + " * interval '1 day'\n"
         "FROM (SELECT id, " + stamp(r.below("id", 14, 1300), r.below("id", 15, 600)) + " AS t0\n"
         "      FROM (SELECT " + gapped_id("g", Sizes::kClientRun) + " AS id FROM generate_series(1, " +
         num(s.clients) + ") AS g) AS ids) AS c";
}

std::string client_unit_rows(const Rand& r, const Sizes& s) {
  return "INSERT INTO cliunimaster (cliunit_id, client_id, unit_name, city, created_at, updated_at)\n"
         "SELECT g, 1 + " + r.below("g", 20, s.max_client_id() + 5) + ", 'Unit ' || g || ' – ' || " +
         r.pick("g", 21, cities()) + ", " + r.pick("g", 22, cities()) + ",\n"
         "  " + stamp(r.below("g", 23, 1300), "0") + ", " + stamp("1300 + " + r.below("g", 24, 300), "0") + "\n"
         "FROM generate_series(1, " + num(s.units) + ") AS g";
}

std::string task_master_rows(const Rand& r) {
  std::vector<std::string> groups = lits({"Audit", "GST", "Income tax", "ROC", "Payroll", "Accounting"});
  std::vector<std::string> verbs = lits({"Prepare", "Review", "File", "Reconcile", "Collect", "Überprüfen"});
  return "INSERT INTO taskmaster (task_id, org_id, task_name, task_group, std_minutes, created_at, updated_at)\n"
         "SELECT g, 1 + g % 3, " + r.pick("g", 30, verbs) + " || ' ' || lower(" + r.pick("g", 31, groups) +
         ") || ' step ' || g, " + r.pick("g", 32, groups) + ", 15 * (1 + " + r.below("g", 33, 16) + "),\n"
         "  " + stamp("g", "0") + ", " + stamp("g + " + r.below("g", 34, 1500), "0") + "\n"
         "FROM generate_series(1, " + num(Sizes::kTaskMasters) + ") AS g";
}

std::string job_master_rows(const Rand& r) {
  std::vector<std::string> groups = lits({"Compliance", "Assurance", "Advisory", "Taxation", "Secretarial"});
  return "INSERT INTO jobmaster (job_id, org_id, job_name, job_group, default_days, created_at, updated_at)\n"
         "SELECT g, 1 + g % 3, " + r.pick("g", 40, job_descriptions()) + " || ' (template ' || g || ')', " +
         r.pick("g", 41, groups) + ", 7 * (1 + " + r.below("g", 42, 12) + "),\n"
         "  " + stamp("g", "0") + ", " + stamp("g + " + r.below("g", 43, 1500), "0") + "\n"
         "FROM generate_series(1, " + num(Sizes::kJobMasters) + ") AS g";
}

std::string staff_rows(const Rand& r, const Sizes& s) {
  return "INSERT INTO mbstaff (staff_id, org_id, staff_name, app_username, app_pw, active_status, email, created_at, updated_at)\n"
         "SELECT g, 1 + (g - 1) % 3, " + r.pick("g", 50, first_names()) + " || ' ' || " +
         r.pick("g", 51, last_names()) + ", 'staff' || g, md5('pw' || " + r.below("g", 52, 1000000000) + "),\n"
         "  CASE WHEN " + r.chance("g", 53, 85) + " THEN 'Y' ELSE 'N' END, 'staff' || g || '@example.org',\n"
         "  " + stamp(r.below("g", 54, 1000), "0") + ", " + stamp("1000 + " + r.below("g", 55, 600), "0") + "\n"
         "FROM generate_series(1, " + num(s.staff) + ") AS g";
}

const char* kJobsheadColumns =
    "job_id, sporg_id, job_uid, year_id, client_id, jobdate, targetdate, work_desc, job_status, jctincharge, "
    "created_at, updated_at";

// Jobs with gapped ids; about 10% reference a missing client (gaps, 0), 1% have no client.
std::string job_rows(const Rand& r, const Sizes& s) {
  std::vector<std::string> statuses = lits({"Completed", "Completed", "Completed", "In Progress", "Open", "On Hold", "Cancelled"});
  return std::string("INSERT INTO jobshead (") + kJobsheadColumns + ")\n"
         "SELECT id, 1 + " + r.below("id", 60, 3) + ", 'J/' || yr || '/' || lpad(id::text, 7, '0'), yr,\n"
         "  CASE WHEN " + r.chance("id", 61, 1) + " THEN NULL WHEN " + r.chance("id", 62, 1) + " THEN 0 ELSE 1 + " +
         r.below("id", 63, s.max_client_id()) + " END,\n"
         "  d, CASE WHEN " + r.chance("id", 64, 6) + " THEN NULL ELSE d + 15 + " + r.below("id", 65, 90) + " END,\n"
         "  " + r.pick("id", 66, job_descriptions()) + " || ' ' || yr || '-' || (yr - 1999), " +
         r.pick("id", 67, statuses) + ", 1 + " + r.below("id", 68, s.staff) + ",\n"
         "  d + " + r.below("id", 69, 600) + " * interval '1 minute', d + " + r.below("id", 70, 200 * 1440) +
         " * interval '1 minute' + interval '10 hours'\n"
         "FROM (SELECT id, yr, date '2019-04-01' + (yr - 2019) * 365 + " + r.below("id", 71, 365) + " AS d\n"
         "      FROM (SELECT id, 2019 + " + r.below("id", 72, 5) + " AS yr\n"
         "            FROM (SELECT " + gapped_id("g", Sizes::kJobRun) + " AS id FROM generate_series(1, " +
         num(s.base_jobs()) + ") AS g) AS ids) AS y) AS j";
}

// Job 1 again under 23 more sporg_id values (same client), and jobs 2..5 entered twice.
std::vector<std::string> job_quirk_rows() {
  return {
      std::string("INSERT INTO jobshead (") + kJobsheadColumns + ")\n"
      "SELECT job_id, 100 + k, job_uid || '-' || k, year_id, client_id, jobdate, targetdate,\n"
      "  work_desc || ' (part ' || k || ')', job_status, jctincharge, created_at, updated_at + k * interval '1 hour'\n"
      "FROM jobshead, generate_series(1, " + num(Sizes::kRepeats) + ") AS k WHERE job_id = " + num(Sizes::kRepeatedJob),
      std::string("INSERT INTO jobshead (") + kJobsheadColumns + ")\n"
      "SELECT job_id, sporg_id, job_uid, year_id, client_id, jobdate, targetdate, work_desc || ' (entered twice)',\n"
      "  CASE WHEN job_id <= 3 THEN 'Completed' ELSE 'Open' END, jctincharge, created_at,\n"
      "  updated_at + CASE WHEN job_id <= 3 THEN interval '3 days' ELSE interval '-30 days' END\n"
      "FROM jobshead WHERE job_id BETWEEN 2 AND " + num(1 + Sizes::kDuplicatedJobs),
  };
}

const char* kJobtasksColumns =
    "jt_id, job_id, task_id, staff_id, task_status, task_date, completed_date, minutes, actual_hours, task_notes, "
    "created_at, updated_at";

// Tasks spread over every job id up to the highest, gaps included (~9% orphans). The rows of one job are
// consecutive values of g, so (offset + g) % tasks gives distinct task ids within a job.
std::string task_rows(const Rand& r, const Sizes& s) {
  std::vector<std::string> statuses = lits({"Completed", "Completed", "Completed", "Pending", "In Progress", "Not Started"});
  const std::string tm = num(Sizes::kTaskMasters);
  return std::string("INSERT INTO jobtasks (") + kJobtasksColumns + ")\n"
         "SELECT g, j, 1 + (" + r.below("j", 80, Sizes::kTaskMasters) + " + g) % " + tm + ", 1 + " +
         r.below("g", 81, s.staff) + ", st, td,\n"
         "  CASE WHEN st = 'Completed' THEN td + " + r.below("g", 82, 30) + " END, mins, round(mins / 60.0, 2),\n"
         "  CASE WHEN " + r.chance("g", 83, 40) + " THEN " + r.pick("g", 84, notes()) + " END,\n"
         "  td + " + r.below("g", 85, 600) + " * interval '1 minute', td + " + r.below("g", 86, 90 * 1440) +
         " * interval '1 minute' + interval '10 hours'\n"
         "FROM (SELECT g, j, " + r.pick("g", 87, statuses) + " AS st,\n"
         "        date '2019-04-01' + " + r.below("j", 88, 1700) + " + " + r.below("g", 89, 20) + " AS td,\n"
         "        CASE WHEN " + r.chance("g", 90, 5) + " THEN NULL ELSE 15 * (1 + " + r.below("g", 91, 24) + ") END AS mins\n"
         "      FROM (SELECT g, 1 + ((g - 1) * " + num(s.max_job_id()) + ") / " + num(s.base_tasks()) +
         " AS j FROM generate_series(1::int8, " + num(s.base_tasks()) + ") AS g) AS jg) AS t";
}

std::string null_key_task_rows(const Sizes& s) {
  const std::string t = "'2021-05-05 10:00'";
  std::vector<std::vector<std::string>> rows;
  const char* jobs[Sizes::kNullKeyTasks] = {"NULL", "NULL", "NULL", "2", "3"};
  for (int k = 0; k < Sizes::kNullKeyTasks; ++k) {
    bool null_job = std::string(jobs[k]) == "NULL";
    rows.push_back({num(s.base_tasks() + k + 1), jobs[k], null_job ? num(k + 1) : "NULL", "1", "'Pending'",
                    "'2021-05-05'", "NULL", "30", "0.50", lit(null_job ? "imported without job" : "task never chosen"),
                    t, t});
  }
  return insert_values("jobtasks", kJobtasksColumns, rows);
}

// tc_id is NULL for ~60%; every 97th row repeats the row before it exactly.
std::string checklist_rows(const Rand& r, const Sizes& s) {
  return "INSERT INTO taskchecklist (tc_id, job_id, task_id, checklistdesc, checkliststatus, checkdate)\n"
         "SELECT CASE WHEN " + r.chance("e", 100, 60) + " THEN NULL ELSE e END, 1 + " +
         r.below("e", 101, s.max_job_id()) + ", 1 + " + r.below("e", 102, Sizes::kTaskMasters) + ",\n"
         "  " + r.pick("e", 103, checklist_items()) + ", " + r.pick("e", 104, {"'Y'", "'Y'", "'N'", "NULL"}) +
         ", CASE WHEN " + r.chance("e", 105, 70) + " THEN date '2019-04-01' + " + r.below("e", 106, 2000) + " END\n"
         "FROM (SELECT CASE WHEN g % 97 = 0 THEN g - 1 ELSE g END AS e FROM generate_series(1, " +
         num(s.checklist) + ") AS g) AS c";
}

std::string reminder_rows(const Rand& r, const Sizes& s) {
  std::vector<std::string> titles = lits({"Call client", "Collect documents", "Due date: GST", "Rappel: Zoë",
                                          "Przypomnienie – Łódź", "Advance tax", "面談の予定"});
  return "INSERT INTO mbreminder (rem_id, staff_id, client_id, job_id, remdate, remtitle, remnotes, remstatus, created_at, updated_at)\n"
         "SELECT id, 1 + " + r.below("id", 110, s.staff) + ", 1 + " + r.below("id", 111, s.max_client_id()) + ",\n"
         "  CASE WHEN " + r.chance("id", 112, 30) + " THEN NULL ELSE 1 + " + r.below("id", 113, s.max_job_id()) + " END,\n"
         "  date '2024-01-01' + " + r.below("id", 114, 300) + ", " + r.pick("id", 115, titles) + ",\n"
         "  CASE WHEN " + r.chance("id", 116, 70) + " THEN " + r.pick("id", 117, notes()) + " END, " +
         r.pick("id", 118, lits({"Pending", "Done", "Snoozed"})) + ",\n"
         "  " + stamp("1700 + " + r.below("id", 119, 100), "0") + ", " + stamp("1800 + " + r.below("id", 120, 200), "0") + "\n"
         "FROM (SELECT " + gapped_id("g", Sizes::kReminderRun) + " AS id FROM generate_series(1, " +
         num(s.reminders) + ") AS g) AS ids";
}

std::string reminder_detail_rows(const Rand& r, const Sizes& s) {
  return "INSERT INTO mbremdetail (remdetid, rem_id, staff_id, remdetdate, remdetnotes, remdetstatus, created_at, updated_at)\n"
         "SELECT g, CASE WHEN " + r.chance("g", 130, 1) + " THEN NULL ELSE 1 + " +
         r.below("g", 131, s.max_reminder_id()) + " END, 1 + " + r.below("g", 132, s.staff) + ",\n"
         "  date '2024-01-01' + " + r.below("g", 133, 330) + ", " + r.pick("g", 134, notes()) + ", " +
         r.pick("g", 135, lits({"Open", "Closed"})) + ",\n"
         "  " + stamp("1700 + " + r.below("g", 136, 100), "0") + ", " + stamp("1800 + " + r.below("g", 137, 250), "0") + "\n"
         "FROM generate_series(1, " + num(s.remdetails) + ") AS g";
}

// ---------------------------------------------------------------------------------------------
// Desktop changes for the incremental demo run

// One client (id > 11, with jobs, not the client of jobs 1..5) with its jobs and their tasks.
std::string delete_one_client(const Rand& r) {
  return "WITH victim AS (\n"
         "  SELECT c.client_id FROM climaster AS c\n"
         "  WHERE c.client_id > 11 AND EXISTS (SELECT 1 FROM jobshead AS j WHERE j.client_id = c.client_id)\n"
         "    AND c.client_id NOT IN (SELECT client_id FROM jobshead WHERE job_id <= 5 AND client_id IS NOT NULL)\n"
         "  ORDER BY " + r.below("c.client_id", 1, 1000000) + ", c.client_id LIMIT 1),\n"
         "gone_jobs AS (DELETE FROM jobshead WHERE client_id IN (SELECT client_id FROM victim) RETURNING job_id),\n"
         "gone_tasks AS (DELETE FROM jobtasks WHERE job_id IN (SELECT job_id FROM gone_jobs))\n"
         "DELETE FROM climaster WHERE client_id IN (SELECT client_id FROM victim)";
}

std::vector<std::string> change_updates(const Rand& r) {
  return {
      "DELETE FROM jobtasks WHERE jt_id IS NOT NULL AND " + r.below("jt_id", 2, 400) + " = 0",
      "UPDATE jobshead SET job_status = 'Completed', work_desc = coalesce(work_desc, '') || ' – reviewed'\n"
      "WHERE " + r.below("job_id", 3, 100) + " = 0",
      "UPDATE jobtasks SET task_status = 'Completed', minutes = coalesce(minutes, 0) + 30,\n"
      "  completed_date = coalesce(completed_date, coalesce(task_date, date '2024-12-01') + 7)\n"
      "WHERE " + r.below("jt_id", 4, 100) + " = 0",
      "UPDATE climaster SET client_name = " + lit("Zoë Łódź-Müller & Söhne (日本語メモ)") + " WHERE client_id = 7",
      "UPDATE taskchecklist SET checkliststatus = 'Y', checkdate = date '2025-01-10'\n"
      "WHERE checkliststatus = 'N' AND " + r.below("coalesce(job_id, 0)::int8 * 1000 + coalesce(task_id, 0)", 5, 100) + " = 0",
      "UPDATE mbreminder SET remstatus = 'Done', remnotes = " + lit("Erledigt – Zoë") + " WHERE rem_id = 3",
  };
}

// New ids start above every id in use, so that no orphan row gains a parent by accident.
std::vector<std::string> change_inserts(const Rand& r) {
  return {
      "INSERT INTO climaster (client_id, org_id, loc_id, con_id, client_name, email, phone, city)\n"
      "SELECT top.id + g, 1, 1 + g % 2, CASE WHEN g % 2 = 0 THEN 0 ELSE g END,\n"
      "  " + r.pick("g", 10, first_names()) + " || ' ' || " + r.pick("g", 11, last_names()) + " || ' (new)',\n"
      "  'new' || (top.id + g) || '@example.com', NULL, " + r.pick("g", 12, cities()) + "\n"
      "FROM (SELECT greatest((SELECT max(client_id) FROM climaster), (SELECT max(client_id) FROM jobshead)) AS id) AS top,\n"
      "  generate_series(1, 5) AS g",
      "INSERT INTO jobshead (job_id, sporg_id, job_uid, year_id, client_id, jobdate, targetdate, work_desc, job_status, jctincharge)\n"
      "SELECT top.id + g, 1 + g % 3, 'J/2025/NEW-' || lpad(g::text, 3, '0'), 2025,\n"
      "  CASE WHEN g <= 5 THEN cli.id - 5 + g ELSE 8 + g % 3 END, date '2025-01-06' + g, date '2025-03-31',\n"
      "  " + r.pick("g", 13, job_descriptions()) + " || ' 2025-26', 'Open', 1 + g % 3\n"
      "FROM (SELECT greatest((SELECT max(job_id) FROM jobshead), (SELECT max(job_id) FROM jobtasks)) AS id) AS top,\n"
      "  (SELECT max(client_id) AS id FROM climaster) AS cli, generate_series(1, 20) AS g",
      "INSERT INTO jobtasks (jt_id, job_id, task_id, staff_id, task_status, task_date, task_notes)\n"
      "SELECT top.id + row_number() OVER (ORDER BY j.job_id, t), j.job_id, t, 1 + t, 'Not Started', j.jobdate,\n"
      "  CASE WHEN t = 1 THEN " + lit("Neu: Unterlagen anfordern – Zoë") + " END\n"
      "FROM jobshead AS j, generate_series(1, 2) AS t, (SELECT max(jt_id) AS id FROM jobtasks) AS top\n"
      "WHERE j.job_uid LIKE 'J/2025/NEW-%' AND NOT EXISTS (SELECT 1 FROM jobtasks AS x WHERE x.job_id = j.job_id)",
      insert_values("taskchecklist", "tc_id, job_id, task_id, checklistdesc, checkliststatus",
                    {{"NULL", "2", "1", lit("Podpis klienta – Zoë"), "'N'"},
                     {"NULL", "2", "1", lit("Podpis klienta – Zoë"), "'N'"},
                     {"NULL", "3", "2", lit("確認書受領"), "NULL"}}),
      "INSERT INTO mbreminder (rem_id, staff_id, client_id, job_id, remdate, remtitle, remnotes, remstatus)\n"
      "SELECT max(rem_id) + 1, 1, 7, NULL, date '2025-02-01', " + lit("Rückruf – Zoë") + ", NULL, 'Pending' FROM mbreminder",
      "INSERT INTO mbremdetail (remdetid, rem_id, staff_id, remdetdate, remdetnotes, remdetstatus)\n"
      "SELECT d.id + k, r.id, 1, date '2025-02-01', " + lit("Notiz ") + " || k, 'Open'\n"
      "FROM (SELECT max(remdetid) AS id FROM mbremdetail) AS d, (SELECT max(rem_id) AS id FROM mbreminder) AS r,\n"
      "  generate_series(1, 2) AS k",
  };
}

// ---------------------------------------------------------------------------------------------
// Mobile rows on the target

constexpr long long kMobileBase = 900000000;  // above any desktop id up to scale ~1000

std::string mobile_stamp(const std::string& hours) {
  return "(timestamptz '2025-02-01 08:00:00+00' + (" + hours + ") * interval '1 hour')";
}

std::vector<std::string> mobile_masters(const Rand& r) {
  const std::string base = num(kMobileBase);
  return {
      "INSERT INTO climaster (client_id, org_id, loc_id, con_id, client_name, email, phone, city, source, created_at, updated_at)\n"
      "SELECT " + base + " + g, 1, 1, 0, 'Mobile lead ' || g || ' – ' || " + r.pick("g", 1, first_names()) +
      ", NULL, '+91 98' || lpad(" + r.below("g", 2, 100000000) + "::text, 8, '0'), " + r.pick("g", 3, cities()) +
      ", 'M', " + mobile_stamp("g") + ", " + mobile_stamp("g + 2") + "\n"
      "FROM generate_series(1, 8) AS g",
      "INSERT INTO climaster (client_id, org_id, loc_id, con_id, client_name, email, phone, city, source, created_at, updated_at)\n"
      "SELECT g, 1, 1, 1, 'Client ' || g || ' (edited on the phone) ' || " + r.pick("g", 4, last_names()) +
      ", 'mobile' || g || '@example.net', NULL, NULL, 'M', " + mobile_stamp("g") + ", " + mobile_stamp("g") + "\n"
      "FROM generate_series(1, 5) AS g",
  };
}

std::vector<std::string> mobile_jobs_and_reminders(const Rand& r) {
  const std::string base = num(kMobileBase);
  const std::string job_cols = "job_id, sporg_id, job_uid, year_id, client_id, jobdate, work_desc, job_status, source, created_at, updated_at";
  return {
      "INSERT INTO jobshead (" + job_cols + ")\n"
      "SELECT " + base + " + g, 1, 'M/2025/' || g, 2025, " + base + " + 1 + g % 8, date '2025-02-01' + g,\n"
      "  " + r.pick("g", 10, job_descriptions()) + ", 'Open', 'M', " + mobile_stamp("g") + ", " + mobile_stamp("g") + "\n"
      "FROM generate_series(1, 10) AS g",
      "INSERT INTO jobshead (" + job_cols + ")\n"
      "SELECT 1, 100 + g, 'M/2025/x' || g, 2025, 1, date '2025-02-03', " + lit("Mobile-Auftrag – Zoë") +
      ", 'Open', 'M', " + mobile_stamp("g") + ", " + mobile_stamp("g") + "\n"
      "FROM generate_series(1, 2) AS g",
      "INSERT INTO reminder (rem_id, staff_id, client_id, remdate, remtitle, remnotes, remstatus, source, created_at, updated_at)\n"
      "SELECT CASE WHEN g <= 6 THEN " + base + " + g ELSE g - 6 END, 1 + " + r.below("g", 11, 16) + ", " + base +
      " + 1, date '2025-02-10' + g,\n  'Mobile reminder ' || g, " + r.pick("g", 12, notes()) + ", 'Pending', 'M', " +
      mobile_stamp("g") + ", " + mobile_stamp("g") + "\n"
      "FROM generate_series(1, 8) AS g",
      "INSERT INTO remdetail (remdetid, rem_id, staff_id, remdetdate, remdetnotes, remdetstatus, source, created_at, updated_at)\n"
      "SELECT " + base + " + g, " + base + " + 1, 1, date '2025-02-11', 'Detail from the app ' || g, 'Open', 'M', " +
      mobile_stamp("g") + ", " + mobile_stamp("g") + "\n"
      "FROM generate_series(1, 3) AS g",
  };
}

std::vector<std::string> mobile_owned_rows(const Rand& r) {
  return {
      "INSERT INTO workdiary (staff_id, client_id, job_id, task_id, date, timefrom, timeto, minutes, tasknotes, source, created_at, updated_at)\n"
      "SELECT staff, client, job, task, date '2025-01-06' + g / 4, t0, t0 + mins * interval '1 minute', mins, note, 'M',\n"
      "  " + mobile_stamp("g") + ", " + mobile_stamp("g + (g % 3)") + "\n"
      "FROM (SELECT g, 1 + " + r.below("g", 20, 16) + " AS staff, 1 + " + r.below("g", 21, 11) + " AS client,\n"
      "        1 + " + r.below("g", 22, 10) + " AS job, 1 + " + r.below("g", 23, 180) + " AS task,\n"
      "        time '09:00' + " + r.below("g", 24, 16) + " * interval '30 minutes' AS t0, 30 * (1 + " +
      r.below("g", 25, 6) + ") AS mins,\n"
      "        CASE WHEN " + r.chance("g", 26, 80) + " THEN " + r.pick("g", 27, notes()) + " END AS note\n"
      "      FROM generate_series(1, 60) AS g) AS w",
      "INSERT INTO learequest (learequest_id, staff_id, fromdate, todate, leavetype, reason, approval_status, source, created_at, updated_at)\n"
      "SELECT g, 1 + " + r.below("g", 30, 16) + ", date '2025-03-01' + 7 * g, date '2025-03-01' + 7 * g + " +
      r.below("g", 31, 5) + ",\n  " + r.pick("g", 32, lits({"Casual", "Sick", "Earned", "Compensatory"})) + ", " +
      r.pick("g", 33, lits({"Family function", "Fieber – Arztbesuch", "Wesele w Łodzi", "Personal", "通院"})) + ", " +
      r.pick("g", 34, lits({"Pending", "Approved", "Rejected"})) + ", 'M', " + mobile_stamp("g") + ", " +
      mobile_stamp("g + 5") + "\n"
      "FROM generate_series(1, 12) AS g",
  };
}

void append(std::vector<std::string>& to, const std::vector<std::string>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

// ---------------------------------------------------------------------------------------------
// Configuration

std::string yaml_quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Written by hand, not by `stagesync init`: init agrees on every table's target, key, generated, skip, owner
// and duplicates, but cannot know the references the cloud schema does not declare as foreign keys, which
// lookup fills jobtasks.client_id, or the `set:` constant (docs/configuration.md, "Starting with stagesync init").
const char* kConfigTables = R"(owner: { column: source, value: D }
tables:
  - name: orgmaster
    key: [org_id]
  - name: locmaster
    key: [org_id, loc_id]
    references:
      - { columns: [org_id], parent: orgmaster, on_orphan: keep }
  - name: conmaster
    key: [con_id]
  - name: climaster
    key: [client_id]
    references:
      - { columns: [org_id, loc_id], parent: locmaster, on_orphan: keep }
      - { columns: [con_id], parent: conmaster, on_orphan: keep }
  - name: cliunimaster
    key: [cliunit_id]
    references:
      - { columns: [client_id], parent: climaster, on_orphan: keep }
  - name: taskmaster
    key: [task_id]
  - name: jobmaster
    key: [job_id]
  - name: mbstaff
    key: [staff_id]
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
      - { columns: [job_id], parent: jobshead, parent_columns: [job_id], on_orphan: skip }
      - { columns: [task_id], parent: taskmaster, on_orphan: keep }
  - name: taskchecklist
    key: none
    generated: [tc_id]
  - name: mbreminder
    target: reminder
    key: [rem_id]
    set: { synced_by: stagesync }
    references:
      - { columns: [client_id], parent: climaster, on_orphan: keep }
  - name: mbremdetail
    target: remdetail
    key: [remdetid]
    references:
      - { columns: [rem_id], parent: mbreminder, on_orphan: skip }   # remdetail has a foreign key
)";

const char* kConfigReverse = R"(reverse:
  - name: workdiary
    into: workdiary
    key: [wd_id]
    rows: { owner: M }
    convert: { timefrom: "date + timefrom", timeto: "date + timeto" }
  - name: reminder                    # reminders created on the phone; forward leaves them out
    into: mbreminder
    key: [rem_id]
    rows: { owner: M }
    skip: [source, synced_by]         # the desktop table has neither column
  - name: learequest
    into: learequest
    key: [learequest_id]
    rows: { owner: M }
)";

}  // namespace

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::vector<std::string> desktop_schema_sql() {
  std::vector<std::string> out = {kTouchFunction};
  for (const TableDef& t : synced_tables()) append(out, desktop_table_sql(t, false));
  for (const TableDef& t : mobile_tables()) append(out, desktop_table_sql(t, true));
  return out;
}

std::vector<std::string> desktop_data_sql(double scale, uint64_t seed) {
  const Rand r(seed);
  const Sizes s(scale);
  std::vector<std::string> out = org_rows();
  append(out, {constitution_rows(), client_rows(r, s), client_unit_rows(r, s), task_master_rows(r),
               job_master_rows(r), staff_rows(r, s), job_rows(r, s)});
  append(out, job_quirk_rows());
  append(out, {task_rows(r, s), null_key_task_rows(s), checklist_rows(r, s), reminder_rows(r, s),
               reminder_detail_rows(r, s), "ANALYZE"});
  return out;
}

std::vector<std::string> cloud_schema_sql() {
  // As in the real cloud schema: every table's updated_at is set by a BEFORE UPDATE trigger (decision 0007).
  std::vector<std::string> out = {kCloudTouchFunction};
  for (const TableDef& t : synced_tables()) append(out, {cloud_table_sql(t, 'D'), cloud_touch_trigger(t)});
  out.push_back("ALTER TABLE remdetail ADD CONSTRAINT remdetail_rem_id_fkey FOREIGN KEY (rem_id) REFERENCES reminder (rem_id)");
  for (const TableDef& t : mobile_tables()) append(out, {cloud_table_sql(t, 'M'), cloud_touch_trigger(t)});
  return out;
}

std::vector<std::string> cloud_mobile_rows_sql(uint64_t seed) {
  const Rand r(mix64(seed ^ 0x4D4F42494C45ull));  // "MOBILE": a stream family of its own
  std::vector<std::string> out = mobile_masters(r);
  append(out, mobile_jobs_and_reminders(r));
  append(out, mobile_owned_rows(r));
  return out;
}

std::vector<std::string> desktop_changes_sql(uint64_t seed) {
  const Rand r(mix64(seed ^ 0x4348414E4745ull));  // "CHANGE"
  std::vector<std::string> out = {delete_one_client(r)};
  append(out, change_updates(r));
  append(out, change_inserts(r));
  return out;
}

std::string demo_config_yaml(const std::string& source_url, const std::string& target_url) {
  return "# stagesync demo: desktop reference schema -> cloud schema (generated by stagesync demo)\n"
         "source:\n  url: " + yaml_quoted(source_url) + "\n"
         "target:\n  url: " + yaml_quoted(target_url) + "\n" + kConfigTables + kConfigReverse;
}

// Declared in sqlite_desktop.h: the same tables; no reverse entries (stagesync never writes a SQLite file).
std::string sqlite_demo_config(const std::string& target_url, const std::string& sqlite_path) {
  return "# stagesync demo: SQLite desktop file -> cloud schema (generated by stagesync demo)\n"
         "source:\n  sqlite: " + yaml_quoted(sqlite_path) + "\n"
         "  timezone: UTC   # the file's date-times are UTC, as SQLite applications write them\n"
         "target:\n  url: " + yaml_quoted(target_url) + "\n" + kConfigTables;
}

}  // namespace stagesync::demo
