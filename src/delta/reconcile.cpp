#include "delta/reconcile.h"

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>

#include "pg/sql.h"
#include "stage/copy_pipe.h"
#include "stage/source_query.h"
#include "stage/staging_table.h"

namespace stagesync::delta {
namespace {

constexpr int64_t kFetchChunk = 10000;  // keys per fetch statement

// Count and exact sum of 64-bit hashes: digests of disjoint sets add up.
struct Digest {
  int64_t rows = 0;
  __int128 sum = 0;
  bool operator==(const Digest& o) const { return rows == o.rows && sum == o.sum; }
  Digest& operator+=(const Digest& o) {
    rows += o.rows;
    sum += o.sum;
    return *this;
  }
};
using Digests = std::map<int, Digest>;

// A numeric sum of up to 2^63 int64 values, as the server prints it.
__int128 parse_sum(const std::string& text) {
  __int128 v = 0;
  bool negative = !text.empty() && text[0] == '-';
  for (size_t i = negative ? 1 : 0; i < text.size() && text[i] != '.'; ++i) v = v * 10 + (text[i] - '0');
  return negative ? -v : v;
}

// The text a value hashes as, the same on both servers: built-in types in the
// target's own type (so the source value is rounded as the target stores
// it), others as text.
std::string canonical(const std::string& alias, const plan::StagedColumn& c) {
  return "CAST(" + alias + "." + pg::ident(c.name) + " AS " + (c.target.builtin_type ? c.target.type : "text") + ")";
}

class TableHash {
 public:
  TableHash(const plan::TablePlan& t, Method m, int buckets) : mask_(std::to_string(buckets - 1)) {
    for (const auto& k : t.key) keys_.push_back(t.column(k));
    if (m == Method::Fingerprint) {
      for (const auto& c : t.columns)
        if (c.compare && std::find(t.key.begin(), t.key.end(), c.name) == t.key.end()) values_.push_back(&c);
    }
  }
  // The row's hash over alias: the key (cursor) or key and compared values (fingerprint).
  std::string hash(const std::string& alias) const {
    std::vector<std::string> parts;
    for (const auto* c : keys_) parts.push_back(canonical(alias, *c));
    for (const auto* c : values_) parts.push_back(canonical(alias, *c));
    return "pg_catalog.hashtextextended(ROW(" + pg::join(parts, ", ") + ")::text, 0)";
  }
  std::string bucket(const std::string& h) const { return "((" + h + " >> 40) & " + mask_ + ")::int"; }
  // One digest of the hashes `h` of the rows of `from`.
  std::string total(const std::string& h, const std::string& from) const {
    return "SELECT count(*), coalesce(sum(y.h), 0)::text FROM (SELECT " + h + " AS h " + from + ") y";
  }
  // Per-bucket digests of the same.
  std::string buckets(const std::string& h, const std::string& from) const {
    return "SELECT b, count(*), sum(h)::text FROM (SELECT " + bucket("y.h") + " AS b, y.h FROM (SELECT " + h +
           " AS h " + from + ") y) z GROUP BY b";
  }
  const std::vector<const plan::StagedColumn*>& keys() const { return keys_; }
  std::vector<std::string> key_names() const {
    std::vector<std::string> out;
    for (const auto* c : keys_) out.push_back(c->name);
    return out;
  }

 private:
  std::string mask_;
  std::vector<const plan::StagedColumn*> keys_;
  std::vector<const plan::StagedColumn*> values_;
};

Digests read_buckets(pg::Result r, Digests d = {}) {
  for (int i = 0; i < r.rows(); ++i) d[static_cast<int>(r.int64(i, 0))] += Digest{r.int64(i, 1), parse_sum(r.text(i, 2))};
  return d;
}

Digest read_total(const pg::Result& r) { return Digest{r.int64(0, 0), parse_sum(r.text(0, 1))}; }

// Runs `use` once per chunk of up to kFetchChunk distinct rows of `columns`
// of `from` (a table or "table alias WHERE ..." on the target), with the
// chunk as a source-side condition "(<alias>.c1, ...) IN (SELECT ...)" over
// the values (travelling as text arrays, cast back to `types`).
void for_each_key_chunk(pg::Connection& target, pg::Connection& source, const std::string& from,
                        const std::vector<std::string>& columns, const std::vector<std::string>& types,
                        const std::string& alias, const std::vector<std::string>& matched,
                        const std::function<void(const std::string& condition)>& use) {
  std::vector<std::string> arrays, casts, names;
  for (size_t i = 0; i < columns.size(); ++i) {
    arrays.push_back("pg_catalog.array_agg(" + pg::ident(columns[i]) + "::text)::text");
    casts.push_back("CAST(u.a" + std::to_string(i) + " AS " + types[i] + ")");
    names.push_back("a" + std::to_string(i));
  }
  std::string cols = pg::column_list(columns);
  pg::Result chunks = target.exec("SELECT " + pg::join(arrays, ", ") + " FROM (SELECT " + cols +
                                  ", (row_number() OVER () - 1) / " + std::to_string(kFetchChunk) +
                                  " AS g FROM (SELECT DISTINCT " + cols + " FROM " + from + ") d) x GROUP BY g");
  for (int r = 0; r < chunks.rows(); ++r) {
    std::vector<std::string> lits;
    for (size_t i = 0; i < columns.size(); ++i) {
      lits.push_back(source.literal(chunks.text(r, static_cast<int>(i))) + "::text[]");
    }
    use("(" + pg::column_list(matched, alias) + ") IN (SELECT " + pg::join(casts, ", ") + " FROM unnest(" +
        pg::join(lits, ", ") + ") AS u(" + pg::join(names, ", ") + "))");
  }
}

int bucket_count(int64_t rows) {
  int b = 64;
  while (b < 16384 && int64_t{b} * 64 < rows) b *= 2;
  return b;
}

}  // namespace

std::string deletions_table(pg::Connection& target, const apply::TableSql& t, const std::string& run_id,
                            size_t index) {
  return stage::create_work_table(target, stage::work_table_name(run_id, index, "_d"), t.key_ddl());
}

TextSettings read_text_settings(pg::Connection& source) {
  TextSettings s;
  for (const char* name : {"DateStyle", "IntervalStyle", "TimeZone", "extra_float_digits", "bytea_output"}) {
    pg::Result r = source.exec("SELECT pg_catalog.current_setting($1)", std::vector<pg::Param>{std::string(name)});
    s.values.emplace_back(name, r.text(0, 0));
  }
  return s;
}

bool same_text_hash(pg::Connection& source, pg::Connection& target) {
  const char* probe = "SELECT pg_catalog.hashtextextended('stagesync fingerprint probe: 42, \xc3\xa9', 7)";
  return source.exec(probe).text(0, 0) == target.exec(probe).text(0, 0);
}

Reconciled reconcile(pg::Connection& source, pg::Connection& target, const ReconcileInput& in,
                     std::vector<std::string>& created) {
  const apply::TableSql& t = *in.table;
  const plan::TablePlan& p = t.table();
  Reconciled out;
  TableHash hash(p, in.method, bucket_count(in.estimated_rows));
  bool cursor = in.method == Method::Cursor;
  std::string keys = pg::column_list(hash.key_names());

  target.exec("BEGIN");
  target.exec("SET LOCAL enable_sort = off");
  for (const auto& [name, value] : in.settings.values) {
    target.exec("SELECT pg_catalog.set_config($1, $2, true)", std::vector<pg::Param>{name, value});
  }
  auto work_table = [&](const std::string& suffix, const std::string& columns) {
    created.push_back(stage::create_work_table(target, stage::work_table_name(in.run_id, in.index, suffix), columns));
    return created.back();
  };
  out.deletions = deletions_table(target, t, in.run_id, in.index);
  created.push_back(out.deletions);
  std::string want = work_table("_w", t.key_ddl());

  // Keys the previous run set aside (cursor method), with why: NULL column for
  // a key collision, the reference's columns for an orphan.
  std::string known = work_table("_r", t.key_ddl() + ", column_name text");
  if (cursor && !in.previous_run_id.empty()) {
    std::vector<std::string> extracted, present;
    for (const auto& k : p.key) {
      extracted.push_back(t.key_from_json("r.row_key", k));
      present.push_back(extracted.back() + " IS NOT NULL");
    }
    target.exec("INSERT INTO " + known + " SELECT DISTINCT ON (" + pg::join(extracted, ", ") + ") " +
                    pg::join(extracted, ", ") + ", r.column_name FROM stagesync.rejects r WHERE r.run_id = $1 AND "
                    "r.table_name = $2 AND r.row_key LIKE '{%' AND " + pg::join(present, " AND "),
                std::vector<pg::Param>{in.previous_run_id, p.target_name});
    target.exec("ANALYZE " + known);
  }

  // Whole-table digests, computed by both servers at once.
  std::string src = stage::source_select(p, source);
  // keep newest: the target holds one row per key, so the source's keys count once.
  // Rows with a NULL key can never be matched (every run sets them aside):
  // they are not part of the key set.
  std::vector<std::string> key_present;
  for (const auto& k : hash.key_names()) key_present.push_back("s." + pg::ident(k) + " IS NOT NULL");
  const std::string source_rows = "FROM (" + src + ") s WHERE " + pg::join(key_present, " AND ");
  std::string source_from = source_rows;
  if (cursor && p.duplicates.keep_newest) source_from = "FROM (SELECT DISTINCT " + keys + " " + source_rows + ") s";
  pg::Params params;
  std::string owned = t.owned("t", params);
  std::string target_from = "FROM " + t.target() + " t WHERE " + owned;
  // Cursor method: the target side also holds the keys the change window just
  // staged and the keys set aside before (neither is an owned target row):
  // with nothing else changed, the same key set as the source. Digested apart
  // (a small set) and added.
  std::string extra_from;
  pg::Params extra_params;
  if (cursor) {
    std::vector<std::string> sk;
    for (const auto* c : hash.keys()) sk.push_back(canonical("s", *c) + " AS " + pg::ident(c->name));
    extra_from = "FROM (SELECT " + pg::join(sk, ", ") + " FROM " + t.staging() + " s UNION SELECT " +
                 pg::join(sk, ", ") + " FROM " + known + " s) x WHERE NOT EXISTS (SELECT 1 FROM " + t.target() +
                 " t WHERE " + t.same_key("t", "x") + " AND " + t.owned("t", extra_params) + ")";
  }
  source.send(hash.total(hash.hash("s"), source_from), pg::Params{});
  target.send(hash.total(hash.hash("t"), target_from), params);
  Digest theirs_total = read_total(source.receive());
  Digest ours_total = read_total(target.receive());
  out.source_rows = theirs_total.rows;
  out.target_owned = ours_total.rows;
  if (cursor) ours_total += read_total(target.exec(hash.total(hash.hash("x"), extra_from), extra_params));

  std::vector<std::string> differing;
  if (!(theirs_total == ours_total)) {
    // The planner cannot know a bucket expression has few values and would
    // sort every row to group them; a hash aggregate needs memory for the buckets only.
    std::string sort = source.exec("SELECT pg_catalog.current_setting('enable_sort')").text(0, 0);
    source.exec("SET LOCAL enable_sort = off");
    source.send(hash.buckets(hash.hash("s"), source_from), pg::Params{});
    target.send(hash.buckets(hash.hash("t"), target_from), params);
    Digests theirs = read_buckets(source.receive());
    Digests ours = read_buckets(target.receive());
    if (cursor) ours = read_buckets(target.exec(hash.buckets(hash.hash("x"), extra_from), extra_params), ours);
    source.exec("SELECT pg_catalog.set_config('enable_sort', $1, true)", std::vector<pg::Param>{sort});
    for (const auto& [b, d] : theirs) {
      auto it = ours.find(b);
      if (it == ours.end() || !(it->second == d)) differing.push_back(std::to_string(b));
    }
    for (const auto& [b, d] : ours)
      if (!theirs.count(b)) differing.push_back(std::to_string(b));
  }

  std::string pairs;  // (key, hash) of the source rows in the differing buckets
  std::string buckets = "{" + pg::join(differing, ",") + "}";
  if (!differing.empty()) {
    pairs = work_table("_k", t.key_ddl() + ", h bigint");
    stage::pipe_copy(
        source,
        stage::binary_copy_out("SELECT " + keys + ", h FROM (SELECT " + pg::column_list(hash.key_names(), "s") + ", " +
                               hash.hash("s") + " AS h " + source_rows + ") x WHERE " + hash.bucket("x.h") +
                               " = ANY (" + source.literal(buckets) + "::int[])"),
        target, "COPY " + pairs + " (" + keys + ", h) FROM STDIN (FORMAT binary)");
    target.exec("ANALYZE " + pairs);
    std::string t_hash = hash.hash("t");
    pg::Params dp;
    std::string dbucket = dp.add(buckets);
    std::string downed = t.owned("t", dp);
    target.exec("INSERT INTO " + out.deletions + " SELECT " + pg::column_list(hash.key_names(), "t") + " FROM " +
                    t.target() + " t WHERE " + downed + " AND " + hash.bucket(t_hash) + " = ANY (" + dbucket +
                    "::int[]) AND NOT EXISTS (SELECT 1 FROM " + pairs + " k WHERE " + t.same_key("k", "t") + ")",
                dp);
    pg::Params wp;
    std::string wowned = t.owned("t", wp);
    target.exec("INSERT INTO " + want + " SELECT " + pg::column_list(hash.key_names(), "k") + " FROM " + pairs +
                    " k WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "k") +
                    ") AND NOT EXISTS (SELECT 1 FROM " + known + " s WHERE " + t.same_key("s", "k") +
                    ") AND NOT EXISTS (SELECT 1 FROM " + t.target() + " t WHERE " + t.same_key("t", "k") + " AND " +
                    wowned + " AND " + t_hash + " = k.h) UNION SELECT " + keys + " FROM " + pairs + " GROUP BY " +
                    keys + " HAVING count(*) > 1",
                wp);
  }
  out.deletion_count = target.exec("SELECT count(*) FROM " + out.deletions).int64(0, 0);

  const std::string not_staged =
      "NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "r") + ")";
  if (cursor && !in.previous_run_id.empty()) {
    // Set-aside keys that may pass now are fetched and judged again.
    std::string retry = "(r.column_name IS NULL AND NOT EXISTS (SELECT 1 FROM " + t.target() + " t WHERE " +
                        t.same_key("t", "r") + "))" +
                        (in.retry_orphans ? " OR r.column_name IS NOT NULL" : "");
    target.exec("INSERT INTO " + want + " SELECT " + pg::column_list(hash.key_names(), "r") + " FROM " + known +
                " r WHERE " + not_staged + " AND (" + retry + ")");
  }
  for (const auto& select : in.also_fetch) target.exec("INSERT INTO " + want + " " + select);
  std::vector<std::string> key_types;
  for (const auto* c : hash.keys()) key_types.push_back(c->stage_type);
  for (const auto& parent : in.children_of) {
    std::vector<std::string> types;
    for (const auto& c : parent.columns) types.push_back(p.column(c)->stage_type);
    for_each_key_chunk(target, source, parent.staging, parent.parent_columns, types, "s", parent.columns,
                       [&](const std::string& children) {
                         stage::pipe_copy(source,
                                          stage::binary_copy_out("SELECT " + pg::column_list(hash.key_names(), "s") +
                                                                 " FROM (" + src + ") s WHERE " + children),
                                          target, "COPY " + want + " (" + keys + ") FROM STDIN (FORMAT binary)");
                       });
  }

  // Fetch the wanted rows from the source, a chunk of keys at a time.
  for_each_key_chunk(target, source,
                     want + " w WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "w") + ")",
                     hash.key_names(), key_types, "s", hash.key_names(), [&](const std::string& wanted) {
                       out.rows_fetched += in.staging->append(source, "SELECT * FROM (" + src + ") s WHERE " + wanted);
                     });
  if (cursor && !in.previous_run_id.empty()) {
    // The set-aside keys not read again stay set aside, recorded for this run,
    // unless the source no longer has them (their bucket differed and the
    // source sent no such key).
    std::string gone = "false";
    if (!pairs.empty()) {
      gone = hash.bucket(hash.hash("r")) + " = ANY (" + pg::text_literal(buckets) +
             "::int[]) AND NOT EXISTS (SELECT 1 FROM " + pairs + " k WHERE " + t.same_key("k", "r") + ")";
    }
    // Two sets of up to every row: hashed, never a nested loop (the planner
    // misjudges the freshly filled work table).
    std::string nestloop = target.exec("SELECT pg_catalog.current_setting('enable_nestloop')").text(0, 0);
    target.exec("SET LOCAL enable_nestloop = off");
    out.rejects_carried =
        target
            .exec("INSERT INTO " + in.run_rejects + " (table_name, row_key, column_name, reason) SELECT $1, "
                  "x.row_key, x.column_name, x.reason FROM stagesync.rejects x JOIN " + known + " r ON x.row_key = " +
                  t.key_json("r") + " AND x.column_name IS NOT DISTINCT FROM r.column_name WHERE x.run_id = $2 AND "
                  "x.table_name = $1 AND " + not_staged + " AND NOT (" + gone + ")",
                  std::vector<pg::Param>{p.target_name, in.previous_run_id})
            .affected();
    target.exec("SELECT pg_catalog.set_config('enable_nestloop', $1, true)", std::vector<pg::Param>{nestloop});
  }
  target.exec("ANALYZE " + out.deletions);
  target.exec("COMMIT");
  return out;
}

}  // namespace stagesync::delta
