// Incremental against full, differentially (issue 11): a seeded random walk
// over a small parent/child schema shared with mobile rows. Each round the
// desktop inserts, updates, deletes and re-keys rows (orphans and NULL
// references included), the mobile app creates and deletes rows of its own on
// the target (some holding keys the desktop has or will have: twins), and then
// `stagesync sync --mode incremental` runs. A fifth table, `visits`, is
// configured `duplicates: { keep: newest }`: the desktop adds rows to its
// keys (some with a `by` value equal to the key's greatest, or NULL), deletes
// their newest or oldest rows, changes `by`, re-keys rows, and the mobile app
// holds some of its keys (collisions); its changes draw from a random stream
// of their own, so the other tables' walks are those of earlier versions.
// After every run:
//   (a) `plan --mode full` predicts no insert, update or delete: the target is
//       exactly what a full run would make of it;
//   (b) a `sync --mode full` writes nothing (summary counts and the physical
//       row versions of every table unchanged): every third round and the
//       last, so that incremental runs also follow incremental runs (set-aside
//       rows carried from run to run; a full run records a new watermark),
//       and to keep the test cheap; (a) holds after every run;
//   (c) `plan --mode incremental`, run just before, predicted the run's counts.
//
// Knobs: STAGESYNC_DIFF_ROUNDS (rounds per seed, default 50; 4 seeds, 200
// rounds), STAGESYNC_DIFF_SEED (run only this seed, to replay a failure),
// STAGESYNC_DIFF_JOBS (seeds run at the same time, default 2). A failure names
// the seed and round and stops that seed (later rounds would only repeat it).
//
// The walk stays inside what incremental runs promise (docs/incremental.md,
// "What incremental does not do"): the mobile app does not create or delete a
// parent row that desktop children reference through an `on_orphan: skip`
// reference, and nobody edits owned target rows.
// TODO(issue 11): STAGESYNC_DIFF_MOBILE_PARENTS=1 lifts the first restriction.
// Incremental runs then disagree with full runs by design (a child set aside
// as an orphan is not read again when the mobile app creates its parent; an
// owned child is not deleted when the mobile app deletes its parent): with
// it, seed 1103 disagrees in round 4 (two tasks and two items set aside as
// orphans, whose job the mobile app then created, are inserted by a full run
// only), seeds 1101, 1104 and 1102 in rounds 36, 11 and 41. Remove the
// restriction once incremental runs look at children of target-side parent
// changes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "support/child_process.h"
#include "support/sync_fixture.h"

namespace stagesync::testing {
namespace {

constexpr int kSeeds = 4;
constexpr int kFirstSeed = 1101;

nlohmann::json summary_of(const CliResult& r) {
  std::stringstream ss(r.out);
  std::string line, last;
  while (std::getline(ss, line))
    if (!line.empty() && line.front() == '{') last = line;
  if (last.empty()) return nlohmann::json::object();
  return nlohmann::json::parse(last, nullptr, false);
}

const char* const kCounted[] = {"read",         "inserted",           "updated",
                                "deleted",      "rejected",           "collisions",
                                "orphans_kept", "duplicates_dropped", "foreign_rows_preserved"};

// One seeded walk: its own pair of databases, connections and random stream,
// so walks of different seeds can run at the same time.
class Walk {
 public:
  // `logical`: the desktop has wal_level = logical and every table is
  // configured `incremental: { capture: logical }` (the runs read the slot).
  explicit Walk(int seed, bool logical = false)
      : seed_(seed),
        logical_(logical),
        src_db_(logical ? Servers::logical() : Servers::source(), "dsrc"),
        tgt_db_(Servers::target(), "dtgt"),
        src_conn_(src_db_.connect()),
        tgt_conn_(tgt_db_.connect()),
        rng_(static_cast<uint64_t>(seed)),
        visits_rng_(static_cast<uint64_t>(seed) * 31 + 7) {}
  ~Walk() {
    for (const auto& f : files_) std::remove(f.c_str());
    if (!logical_) return;
    // A database with a slot cannot be dropped: the runs' slot goes first.
    try {
      src().exec(
          "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "seed " << seed_ << ": dropping the slot: " << e.what();
    }
  }

  // Runs `rounds` rounds; false (after reporting) once something disagreed.
  bool run_rounds(int rounds);

 private:
  int seed_;
  bool logical_;
  TempDatabase src_db_, tgt_db_;
  pg::Connection src_conn_, tgt_conn_;
  std::mt19937_64 rng_;
  std::mt19937_64 visits_rng_;                 // the keep-newest table's changes (visits_change())
  std::map<std::string, int> visits_methods_;  // how its incremental runs found changes (mode_used)
  std::vector<std::string> files_;
  std::string cfg_;
  bool failed_ = false;
  const bool mobile_parents_ = env_int("STAGESYNC_DIFF_MOBILE_PARENTS", 0) != 0;  // see the TODO above

  pg::Connection& src() { return src_conn_; }
  pg::Connection& tgt() { return tgt_conn_; }
  // Records a disagreement (gtest assertions are thread-safe).
  void fail(const std::string& what) {
    failed_ = true;
    ADD_FAILURE() << "seed " << seed_ << ": " << what;
  }
  std::string temp_file(const std::string& suffix) {
    static std::atomic<int> k{0};
    std::string path = (std::filesystem::temp_directory_path() /
                        ("stagesync-diff-" + std::to_string(getpid()) + "-" + std::to_string(k++) + suffix))
                           .string();
    files_.push_back(path);
    return path;
  }

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(int percent) { return pick(1, 100) <= percent; }
  std::string n(int v) { return std::to_string(v); }
  // An integer, or NULL now and then.
  std::string maybe_null(int lo, int hi, int null_percent) { return chance(null_percent) ? "NULL" : n(pick(lo, hi)); }
  std::string word() {
    static const char* const words[] = {"alpha", "beta", "gamma", "zoë", "d''ora", "", "x y"};
    return "'" + std::string(words[pick(0, 6)]) + std::to_string(pick(0, 9)) + "'";
  }

  void schema() {
    src().exec(
        "CREATE TABLE clients (client_id int PRIMARY KEY, name text);"
        "CREATE TABLE jobs (job_id int, sporg_id int, name text, PRIMARY KEY (job_id, sporg_id));"
        "CREATE TABLE tasks (task_id int PRIMARY KEY, job_id int, client_id int, note text);"
        "CREATE TABLE items (item_id int PRIMARY KEY, task_id int, job_id int, sporg_id int, qty int);"
        "CREATE TABLE visits (visit_id int, at int, note text);");
    tgt().exec(
        "CREATE TABLE clients (client_id int PRIMARY KEY, name text, source char(1) NOT NULL DEFAULT 'D');"
        "CREATE TABLE jobs (job_id int, sporg_id int, name text, source char(1) NOT NULL DEFAULT 'D', "
        "PRIMARY KEY (job_id, sporg_id));"
        "CREATE TABLE tasks (task_id int PRIMARY KEY, job_id int, client_id int, client_name text, note text, "
        "source char(1) NOT NULL DEFAULT 'D');"
        "CREATE TABLE items (item_id int PRIMARY KEY, task_id int, job_id int, sporg_id int, qty int, "
        "source char(1) NOT NULL DEFAULT 'D');"
        "CREATE TABLE visits (visit_id int PRIMARY KEY, at int, note text, source char(1) NOT NULL DEFAULT 'D');");
  }

  std::string config() {
    std::string path = temp_file(".yaml");
    std::ofstream(path) << "source: { url: \"" + src_db_.url() + "\" }\ntarget: { url: \"" + tgt_db_.url() + "\" }\n"
                        << (logical_ ? "incremental: { capture: logical }\n" : "")
                        << "owner: { column: source, value: D }\n"
                           "guards: { allow_empty: true, max_delete_fraction: 1, max_shrink_fraction: 1 }\n"
                           "tables:\n"
                        << ("  - { name: clients, key: [client_id] }\n"
                            "  - { name: jobs, key: [job_id, sporg_id] }\n"
                            "  - name: tasks\n"
                            "    key: [task_id]\n"
                            "    lookups: [ { column: client_name, from: clients, match: [client_id], take: name } ]\n"
                            "    references:\n"
                            "      - { columns: [job_id], parent: jobs, on_orphan: skip }  # the leading key column\n"
                            "      - { columns: [client_id], parent: clients, on_orphan: keep }\n"
                            "  - name: items\n"
                            "    key: [item_id]\n"
                            "    references:\n"
                            "      - { columns: [task_id], parent: tasks, on_orphan: skip }\n"
                            "      - { columns: [job_id, sporg_id], parent: jobs, on_orphan: keep }\n"
                            "  - { name: visits, key: [visit_id], duplicates: { keep: newest, by: at } }\n");
    return path;
  }

  // One random desktop change (some are no-ops: the chosen key may not exist).
  void desktop_change() {
    switch (pick(0, 15)) {
      case 0:
        src().exec("INSERT INTO clients VALUES (" + n(pick(1, 10)) + ", " + word() + ") ON CONFLICT DO NOTHING");
        break;
      case 1:  // the lookup value of tasks changes
        src().exec("UPDATE clients SET name = " + word() + " WHERE client_id = " + n(pick(1, 10)));
        break;
      case 2:
        src().exec("DELETE FROM clients WHERE client_id = " + n(pick(1, 10)));
        break;
      case 3:
        src().exec("INSERT INTO jobs VALUES (" + n(pick(1, 12)) + ", " + n(pick(1, 3)) + ", " + word() +
                   ") ON CONFLICT DO NOTHING");
        break;
      case 4:
        src().exec("UPDATE jobs SET name = " + word() + " WHERE job_id = " + n(pick(1, 12)));
        break;
      case 5:
        src().exec("DELETE FROM jobs WHERE job_id = " + n(pick(1, 12)) + " AND sporg_id = " + n(pick(1, 3)));
        break;
      case 6: {  // a key changed in place (part of a composite key)
        std::string j = n(pick(1, 12)), s = n(pick(1, 3)), nj = n(pick(1, 13)), ns = n(pick(1, 3));
        src().exec("UPDATE jobs SET job_id = " + nj + ", sporg_id = " + ns + " WHERE job_id = " + j +
                   " AND sporg_id = " + s + " AND NOT EXISTS (SELECT 1 FROM jobs WHERE job_id = " + nj +
                   " AND sporg_id = " + ns + ")");
        break;
      }
      case 7:
      case 8:  // job 13 and 14 never exist at the start: orphans
        src().exec("INSERT INTO tasks VALUES (" + n(pick(1, 60)) + ", " + maybe_null(1, 14, 10) + ", " +
                   maybe_null(1, 11, 10) + ", " + word() + ") ON CONFLICT DO NOTHING");
        break;
      case 9:
        src().exec("UPDATE tasks SET " +
                   std::string(chance(50)   ? "note = " + word()
                               : chance(50) ? "job_id = " + maybe_null(1, 14, 10)
                                            : "client_id = " + maybe_null(1, 11, 10)) +
                   " WHERE task_id = " + n(pick(1, 60)));
        break;
      case 10:
        src().exec("DELETE FROM tasks WHERE task_id = " + n(pick(1, 60)));
        break;
      case 11: {
        std::string from = n(pick(1, 60)), to = n(pick(1, 65));
        src().exec("UPDATE tasks SET task_id = " + to + " WHERE task_id = " + from +
                   " AND NOT EXISTS (SELECT 1 FROM tasks WHERE task_id = " + to + ")");
        break;
      }
      case 12:
      case 13:
        src().exec("INSERT INTO items VALUES (" + n(pick(1, 60)) + ", " + maybe_null(1, 65, 10) + ", " +
                   maybe_null(1, 13, 10) + ", " + n(pick(1, 3)) + ", " + n(pick(0, 9)) + ") ON CONFLICT DO NOTHING");
        break;
      case 14:
        src().exec("UPDATE items SET " +
                   std::string(chance(50) ? "qty = " + n(pick(0, 9)) : "task_id = " + maybe_null(1, 65, 10)) +
                   " WHERE item_id = " + n(pick(1, 60)));
        break;
      case 15:
        if (chance(50)) {
          src().exec("DELETE FROM items WHERE item_id = " + n(pick(1, 60)));
        } else {
          std::string from = n(pick(1, 60)), to = n(pick(1, 65));
          src().exec("UPDATE items SET item_id = " + to + " WHERE item_id = " + from +
                     " AND NOT EXISTS (SELECT 1 FROM items WHERE item_id = " + to + ")");
        }
        break;
    }
  }

  // One random change of the keep-newest table (its own random stream):
  // duplicates of keys 1-8, `by` values tied with the key's greatest or NULL
  // now and then, deletions of a key's newest rows (which leave no row
  // version behind), and mobile rows holding some of its keys.
  int vpick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(visits_rng_); }
  void visits_change() {
    std::string k = n(vpick(1, 8));
    std::string row = "(SELECT ctid FROM visits WHERE visit_id = " + k;
    auto at = [&] {
      int r = vpick(1, 100);
      if (r <= 10) return "(SELECT max(at) FROM visits WHERE visit_id = " + k + ")";  // a tie (or NULL)
      if (r <= 18) return std::string("NULL");
      return n(vpick(1, 1000));
    };
    switch (vpick(0, 8)) {
      case 0:
      case 1:
        src().exec("INSERT INTO visits VALUES (" + (vpick(1, 100) <= 3 ? std::string("NULL") : k) + ", " + at() +
                   ", 'v" + n(vpick(0, 99)) + "')");
        break;
      case 2:  // the newest row of a key (as the full run would choose, near enough)
        src().exec("DELETE FROM visits WHERE ctid = " + row + " ORDER BY at DESC NULLS LAST, note DESC LIMIT 1)");
        break;
      case 3:
        src().exec("DELETE FROM visits WHERE ctid = " + row + " ORDER BY at NULLS FIRST LIMIT 1)");
        break;
      case 4:
        src().exec("UPDATE visits SET at = " + at() + " WHERE ctid = " + row + " LIMIT 1)");
        break;
      case 5:
        src().exec("UPDATE visits SET note = 'w" + n(vpick(0, 99)) + "' WHERE ctid = " + row + " LIMIT 1)");
        break;
      case 6:
        src().exec("UPDATE visits SET visit_id = " + n(vpick(1, 9)) + " WHERE ctid = " + row + " LIMIT 1)");
        break;
      case 7:  // every row of a key but its oldest: its duplicates (and ties) go
        src().exec("DELETE FROM visits WHERE visit_id = " + k + " AND ctid <> " + row +
                   " ORDER BY at NULLS FIRST LIMIT 1)");
        break;
      case 8:
        if (vpick(0, 1)) {
          tgt().exec("INSERT INTO visits VALUES (" + n(vpick(1, 9)) + ", 1, 'mobile', 'M') ON CONFLICT DO NOTHING");
        } else {
          tgt().exec("DELETE FROM visits WHERE source = 'M' AND visit_id = " + k);
        }
        break;
    }
  }

  bool source_has(const std::string& sql) { return src().exec("SELECT EXISTS (" + sql + ")").boolean(0, 0); }

  // One random change by the mobile app on the target: rows of its own
  // (source = 'M'), in the desktop's key ranges, so some hold a key the
  // desktop has or will have (twins; the desktop's row is a collision).
  void mobile_change() {
    switch (pick(0, 7)) {
      case 0:
        tgt().exec("INSERT INTO clients VALUES (" + n(pick(1, 12)) + ", 'mobile', 'M') ON CONFLICT DO NOTHING");
        break;
      case 1:
        tgt().exec("DELETE FROM clients WHERE source = 'M' AND client_id = " + n(pick(1, 12)));
        break;
      case 2:
      case 3: {  // a parent of `tasks` (skip): only where no desktop task refers to its job_id
        std::string j = n(pick(1, 14)), s = n(pick(1, 3));
        if (!mobile_parents_ && source_has("SELECT 1 FROM tasks WHERE job_id = " + j)) break;
        if (chance(60)) {
          tgt().exec("INSERT INTO jobs VALUES (" + j + ", " + s + ", 'mobile job', 'M') ON CONFLICT DO NOTHING");
        } else {
          tgt().exec("DELETE FROM jobs WHERE source = 'M' AND job_id = " + j);
        }
        break;
      }
      case 4:
      case 5: {  // a parent of `items` (skip): only where no desktop item refers to it
        std::string id = n(pick(1, 65));
        if (!mobile_parents_ && source_has("SELECT 1 FROM items WHERE task_id = " + id)) break;
        if (chance(60)) {
          tgt().exec("INSERT INTO tasks VALUES (" + id + ", " + maybe_null(1, 14, 20) +
                     ", NULL, NULL, 'mobile task', 'M') ON CONFLICT DO NOTHING");
        } else {
          tgt().exec("DELETE FROM tasks WHERE source = 'M' AND task_id = " + id);
        }
        break;
      }
      case 6:
        tgt().exec("INSERT INTO items VALUES (" + n(pick(1, 65)) + ", " + maybe_null(1, 65, 20) + ", " +
                   n(pick(1, 14)) + ", 1, 0, 'M') ON CONFLICT DO NOTHING");
        break;
      case 7:
        if (chance(50)) {
          tgt().exec("DELETE FROM items WHERE source = 'M' AND item_id = " + n(pick(1, 65)));
        } else {
          tgt().exec("UPDATE items SET qty = qty + 1 WHERE source = 'M' AND item_id = " + n(pick(1, 65)));
        }
        break;
    }
  }

  // Physical identity of every target row version: changes on any insert, update or delete.
  std::string all_versions() {
    std::string v;
    for (const char* t : {"clients", "jobs", "tasks", "items", "visits"}) {
      v += std::string(t) + "=" +
           tgt()
               .exec(std::string("SELECT count(*) || ':' || coalesce(md5(string_agg(ctid::text || '/' || xmin::text, "
                                 "',' ORDER BY ctid)), '') FROM ") +
                     t)
               .text(0, 0) +
           " ";
    }
    return v;
  }

  // Runs the binary; a disagreement (with its output) unless it exits 0 with a summary.
  nlohmann::json run(const std::vector<std::string>& args) {
    std::string out = temp_file(".out"), err = temp_file(".err");
    ChildExit e = wait_child(start_child(stagesync_binary(), args, out, err));
    std::string line;
    for (const auto& a : args) line += " " + a;
    CliResult r{e.code, slurp(out), slurp(err)};
    nlohmann::json s = summary_of(r);
    if (e.code != 0 || !s.contains("tables")) {
      fail("stagesync" + line + " exited " + std::to_string(e.code) + "\n" + r.out + r.err + e.stacks);
      return nlohmann::json::object();
    }
    return s;
  }
  static std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Expects `a == b` for a JSON count; a disagreement otherwise.
  void expect_same(const nlohmann::json& a, const nlohmann::json& b, const std::string& what) {
    if (a != b) fail(what);
  }

  // One round; false once something disagreed.
  bool round(bool full_check) {
    int changes = chance(10) ? 0 : pick(1, 8);
    for (int i = 0; i < changes; ++i) desktop_change();
    int mobile = chance(50) ? 0 : pick(1, 3);
    for (int i = 0; i < mobile; ++i) mobile_change();
    for (int i = vpick(0, 3); i > 0; --i) visits_change();

    nlohmann::json predicted = run({"plan", "--config", cfg_, "--mode", "incremental", "--json"});
    if (failed_) return false;
    nlohmann::json done = run({"sync", "--config", cfg_, "--mode", "incremental", "--json"});
    if (failed_) return false;
    // (c) plan predicted the incremental run.
    const auto& p = predicted["tables"];
    const auto& d = done["tables"];
    for (const auto& t : d)
      if (t["target"] == "visits") ++visits_methods_[t["mode_used"].get<std::string>()];
    expect_same(p.size(), d.size(), "plan and run list different tables");
    for (size_t i = 0; i < p.size() && i < d.size(); ++i) {
      std::string both = "\nplan: " + p[i].dump() + "\nrun:  " + d[i].dump();
      expect_same(p[i]["target"], d[i]["target"], "plan and run list different tables" + both);
      // (A plan does not read the slot, which only runs advance: it predicts
      // a logical run's counts by the change window and key digests.)
      if (!logical_) expect_same(p[i]["mode_used"], d[i]["mode_used"], "plan and run chose different methods" + both);
      for (const char* k : kCounted) {
        // (What a logical run reads, and so drops or sets aside among what it read, is its own.)
        if (logical_ && std::string(k) != "inserted" && std::string(k) != "updated" && std::string(k) != "deleted")
          continue;
        expect_same(p[i]["counts"][k], d[i]["counts"][k],
                    "plan --mode incremental predicted " + p[i]["counts"][k].dump() + " " + k + " in " +
                        d[i]["target"].dump() + ", the run did " + d[i]["counts"][k].dump() + both);
      }
    }
    // (a) a full run would change nothing.
    nlohmann::json full_plan = run({"plan", "--config", cfg_, "--mode", "full", "--json"});
    for (const auto& t : full_plan["tables"]) {
      for (const char* k : {"inserted", "updated", "deleted"}) {
        expect_same(t["counts"][k], 0,
                    "after the incremental run, plan --mode full predicts " + t["counts"][k].dump() + " " + k + " in " +
                        t["target"].dump() + "\nfull plan: " + t.dump() + "\nincremental run: " + done.dump());
      }
    }
    if (failed_ || !full_check) return !failed_;
    // (b) a full run writes nothing.
    std::string before = all_versions();
    nlohmann::json full = run({"sync", "--config", cfg_, "--mode", "full", "--json"});
    for (const auto& t : full["tables"]) {
      for (const char* k : {"inserted", "updated", "deleted"}) {
        expect_same(t["counts"][k], 0,
                    "the full run after the incremental one did " + t["counts"][k].dump() + " " + k + " in " +
                        t["target"].dump() + "\n" + t.dump());
      }
    }
    expect_same(all_versions(), before, "the full run after the incremental one wrote rows");
    return !failed_;
  }
};

bool Walk::run_rounds(int rounds) {
  schema();
  // The starting data: about half of every key range, and mobile rows.
  for (int i = 0; i < 30; ++i) desktop_change();
  src().exec(
      "INSERT INTO clients SELECT g, 'client ' || g FROM generate_series(1, 6) g ON CONFLICT DO NOTHING;"
      "INSERT INTO jobs SELECT g, 1 + g % 2, 'job ' || g FROM generate_series(1, 10) g ON CONFLICT DO NOTHING;"
      "INSERT INTO tasks SELECT g, 1 + g % 12, 1 + g % 7, 'task ' || g FROM generate_series(1, 30) g "
      "ON CONFLICT DO NOTHING;"
      "INSERT INTO items SELECT g, 1 + g % 33, 1 + g % 11, 1 + g % 2, g FROM generate_series(1, 30) g "
      "ON CONFLICT DO NOTHING;"
      "INSERT INTO visits SELECT 1 + g % 8, g * 37 % 1000, 'v' || g FROM generate_series(1, 14) g;");
  for (int i = 0; i < 6; ++i) mobile_change();
  cfg_ = config();
  run({"sync", "--config", cfg_, "--mode", "incremental", "--json"});  // the first run: full, records a watermark
  if (failed_) {
    fail("the first run failed");
    return false;
  }
  for (int r = 1; r <= rounds; ++r) {
    if (!round(r % 3 == 0 || r == rounds)) {
      fail("disagreed in round " + std::to_string(r) + "; replay with STAGESYNC_DIFF_SEED=" + std::to_string(seed_) +
           " STAGESYNC_DIFF_ROUNDS=" + std::to_string(r) + " ./differential_test");
      return false;
    }
  }
  std::string methods;
  for (const auto& [m, k] : visits_methods_) methods += " " + m + " " + std::to_string(k);
  std::cout << "seed " + std::to_string(seed_) + ": visits (keep newest) ran" + methods + "\n" << std::flush;
  return true;
}

// The same walk with `capture: logical`: each run reads the keys the
// desktop's write-ahead log names since the last one (the slot), instead of
// the change window and key digests. One seed; STAGESYNC_DIFF_LOGICAL_ROUNDS
// (default 30) rounds, STAGESYNC_DIFF_SEED replays a seed.
TEST(Differential, LogicalCaptureAgreesWithFullRunsAndPlan) {
  const char* replay = std::getenv("STAGESYNC_DIFF_SEED");
  int seed = replay && *replay ? std::atoi(replay) : kFirstSeed + kSeeds;
  int rounds = env_int("STAGESYNC_DIFF_LOGICAL_ROUNDS", 30);
  Walk walk(seed, true);
  EXPECT_TRUE(walk.run_rounds(rounds));
}

TEST(Differential, IncrementalRunsAgreeWithFullRunsAndPlan) {
  std::vector<int> seeds;
  if (const char* replay = std::getenv("STAGESYNC_DIFF_SEED"); replay && *replay) {
    seeds.push_back(std::atoi(replay));
  } else {
    for (int i = 0; i < kSeeds; ++i) seeds.push_back(kFirstSeed + i);
  }
  int rounds = env_int("STAGESYNC_DIFF_ROUNDS", 50);
  // Walks of different seeds run at the same time (each mostly waits on a
  // server or the binary); STAGESYNC_DIFF_JOBS=1 runs them one after another.
  size_t jobs = static_cast<size_t>(std::max(1, env_int("STAGESYNC_DIFF_JOBS", 2)));
  Servers::source();  // started here: starting them is not thread-safe
  Servers::target();
  std::atomic<size_t> next{0};
  std::atomic<int> agreed{0};
  std::vector<std::thread> workers;
  for (size_t j = 0; j < std::min(jobs, seeds.size()); ++j) {
    workers.emplace_back([&] {
      for (size_t i; (i = next++) < seeds.size();) {
        try {
          Walk walk(seeds[i]);
          if (walk.run_rounds(rounds)) agreed += rounds;
        } catch (const std::exception& e) {
          ADD_FAILURE() << "seed " << seeds[i] << ": " << e.what();
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  std::cout << agreed.load() << " rounds over " << seeds.size() << " seed(s) agreed" << std::endl;
  EXPECT_EQ(agreed.load(), rounds * static_cast<int>(seeds.size()));
}

}  // namespace
}  // namespace stagesync::testing
