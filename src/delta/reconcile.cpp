#include "delta/reconcile.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "pg/sql.h"
#include "stage/copy_pipe.h"
#include "stage/source_query.h"

namespace stagesync::delta {
namespace {

constexpr int64_t kFetchChunk = 10000;  // keys per fetch statement

struct Digest {
  int64_t rows = 0, lo = 0, hi = 0;
  bool operator==(const Digest& o) const { return std::tie(rows, lo, hi) == std::tie(o.rows, o.lo, o.hi); }
};
using Digests = std::map<int, Digest>;

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
  // Per-bucket digest of the hashes `h` of the rows of `from`.
  std::string digest(const std::string& h, const std::string& from) const {
    return "SELECT b, count(*), sum(lo), sum(hi) FROM (SELECT " + bucket("x.h") +
           " AS b, x.h & 2147483647 AS lo, (x.h >> 31) & 2147483647 AS hi FROM (SELECT " + h + " AS h " + from +
           ") x) y GROUP BY b";
  }
  const std::vector<const plan::StagedColumn*>& keys() const { return keys_; }
  std::vector<std::string> key_names() const {
    std::vector<std::string> out;
    for (const auto* c : keys_) out.push_back(c->name);
    return out;
  }
  std::string key_ddl() const {
    std::vector<std::string> cols;
    for (const auto* c : keys_) cols.push_back(pg::ident(c->name) + " " + c->stage_type);
    return pg::join(cols, ", ");
  }

 private:
  std::string mask_;
  std::vector<const plan::StagedColumn*> keys_;
  std::vector<const plan::StagedColumn*> values_;
};

Digests read_digests(pg::Connection& conn, const std::string& sql, const pg::Params& params) {
  pg::Result r = conn.exec(sql, params);
  Digests d;
  for (int i = 0; i < r.rows(); ++i) {
    d[static_cast<int>(r.int64(i, 0))] = Digest{r.int64(i, 1), r.int64(i, 2), r.int64(i, 3)};
  }
  return d;
}

int bucket_count(int64_t rows) {
  int b = 64;
  while (b < 65536 && int64_t{b} * 32 < rows) b *= 2;
  return b;
}

}  // namespace

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
  out.buckets = bucket_count(in.estimated_rows);
  TableHash hash(p, in.method, out.buckets);

  // The source side, in the run's snapshot.
  std::string src = stage::source_select(p, source);
  // The planner cannot know a bucket expression has few values and would sort
  // every row to group them; hashing the groups needs memory for the buckets only.
  std::string sort = source.exec("SELECT pg_catalog.current_setting('enable_sort')").text(0, 0);
  source.exec("SET LOCAL enable_sort = off");
  Digests theirs = read_digests(source, hash.digest(hash.hash("s"), "FROM (" + src + ") s"), pg::Params{});
  source.exec("SELECT pg_catalog.set_config('enable_sort', $1, true)", std::vector<pg::Param>{sort});
  for (const auto& [b, d] : theirs) out.source_rows += d.rows;

  target.exec("BEGIN");
  target.exec("SET LOCAL enable_sort = off");
  for (const auto& [name, value] : in.settings.values) {
    target.exec("SELECT pg_catalog.set_config($1, $2, true)", std::vector<pg::Param>{name, value});
  }
  // The target side: owned rows; for the cursor method also the keys the
  // change window staged, so a new row is not a difference.
  pg::Params params;
  std::string owned = t.owned("t", params);
  std::string from = "FROM " + t.target() + " t WHERE " + owned;
  if (in.method == Method::Cursor) {
    std::vector<std::string> tk, sk;
    for (const auto* c : hash.keys()) {
      tk.push_back(canonical("t", *c) + " AS " + pg::ident(c->name));
      sk.push_back(canonical("s", *c) + " AS " + pg::ident(c->name));
    }
    from = "FROM (SELECT " + pg::join(tk, ", ") + " FROM " + t.target() + " t WHERE " + owned + " UNION ALL SELECT DISTINCT " +
           pg::join(sk, ", ") + " FROM " + t.staging() + " s WHERE NOT EXISTS (SELECT 1 FROM " + t.target() +
           " t WHERE " + t.same_key("t", "s") + " AND " + t.owned("t", params) + ")) u";
  }
  Digests ours = read_digests(target, hash.digest(hash.hash(in.method == Method::Cursor ? "u" : "t"), from), params);

  std::vector<std::string> differing;
  for (const auto& [b, d] : theirs) {
    auto it = ours.find(b);
    if (it == ours.end() || !(it->second == d)) differing.push_back(std::to_string(b));
  }
  for (const auto& [b, d] : ours)
    if (!theirs.count(b)) differing.push_back(std::to_string(b));
  out.buckets_differing = static_cast<int>(differing.size());
  std::string buckets = "{" + pg::join(differing, ",") + "}";

  target.exec("CREATE UNLOGGED TABLE " + in.deletions + " (" + hash.key_ddl() + ") WITH (autovacuum_enabled = false)");
  created.push_back(in.deletions);
  std::string want = pg::qualified("stagesync", in.work_base + "_w");
  target.exec("CREATE UNLOGGED TABLE " + want + " (" + hash.key_ddl() + ") WITH (autovacuum_enabled = false)");
  created.push_back(want);
  std::string keys = pg::column_list(hash.key_names());

  if (!differing.empty()) {
    // (key, hash) of the source rows in the differing buckets.
    std::string pairs = pg::qualified("stagesync", in.work_base + "_k");
    target.exec("CREATE UNLOGGED TABLE " + pairs + " (" + hash.key_ddl() + ", h bigint) WITH (autovacuum_enabled = false)");
    created.push_back(pairs);
    out.keys_compared = stage::pipe_copy(
        source,
        stage::binary_copy_out("SELECT " + keys + ", h FROM (SELECT " + pg::column_list(hash.key_names(), "s") + ", " +
                               hash.hash("s") + " AS h FROM (" + src + ") s) x WHERE " + hash.bucket("x.h") +
                               " = ANY (" + source.literal(buckets) + "::int[])"),
        target, "COPY " + pairs + " (" + keys + ", h) FROM STDIN (FORMAT binary)");
    target.exec("ANALYZE " + pairs);
    std::string t_hash = hash.hash("t");
    pg::Params dp;
    std::string dbucket = dp.add(buckets);
    std::string downed = t.owned("t", dp);
    target.exec("INSERT INTO " + in.deletions + " SELECT " + pg::column_list(hash.key_names(), "t") + " FROM " +
                    t.target() + " t WHERE " + downed + " AND " + hash.bucket(t_hash) + " = ANY (" + dbucket +
                    "::int[]) AND NOT EXISTS (SELECT 1 FROM " + pairs + " k WHERE " + t.same_key("k", "t") + ")",
                dp);
    pg::Params wp;
    std::string wowned = t.owned("t", wp);
    target.exec("INSERT INTO " + want + " SELECT " + pg::column_list(hash.key_names(), "k") + " FROM " + pairs +
                    " k WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "k") +
                    ") AND NOT EXISTS (SELECT 1 FROM " + t.target() + " t WHERE " + t.same_key("t", "k") + " AND " +
                    wowned + " AND " + t_hash + " = k.h) UNION SELECT " + keys + " FROM " + pairs + " GROUP BY " +
                    keys + " HAVING count(*) > 1",
                wp);
  }
  out.deletions = target.exec("SELECT count(*) FROM " + in.deletions).int64(0, 0);

  // Keys the previous run set aside: their rows may pass now.
  if (!in.previous_run_id.empty()) {
    std::vector<std::string> extracted, present;
    for (const auto* c : hash.keys()) {
      std::string v = "(r.row_key::json ->> " + pg::text_literal(c->name) + ")";
      extracted.push_back("CAST(" + v + " AS " + c->stage_type + ")");
      present.push_back(v + " IS NOT NULL");
    }
    target.exec("INSERT INTO " + want + " SELECT DISTINCT " + pg::join(extracted, ", ") +
                    " FROM stagesync.rejects r WHERE r.run_id = $1 AND r.table_name = $2 AND r.row_key LIKE '{%' AND " +
                    pg::join(present, " AND "),
                std::vector<pg::Param>{in.previous_run_id, p.target_name});
  }

  for (const auto& select : in.also_fetch) target.exec("INSERT INTO " + want + " " + select);

  // Fetch the wanted rows from the source, a chunk of keys at a time.
  std::vector<std::string> arrays, unnest_cols, casts;
  for (size_t i = 0; i < hash.keys().size(); ++i) {
    const auto* c = hash.keys()[i];
    arrays.push_back("pg_catalog.array_agg(" + pg::ident(c->name) + "::text)::text");
    unnest_cols.push_back("a" + std::to_string(i));
    casts.push_back("CAST(u.a" + std::to_string(i) + " AS " + c->stage_type + ")");
  }
  pg::Result chunks = target.exec("SELECT " + pg::join(arrays, ", ") + " FROM (SELECT " + keys +
                                  ", (row_number() OVER () - 1) / " + std::to_string(kFetchChunk) +
                                  " AS g FROM (SELECT DISTINCT " + keys + " FROM " + want + ") d) x GROUP BY g");
  for (int r = 0; r < chunks.rows(); ++r) {
    std::vector<std::string> lits;
    for (size_t i = 0; i < hash.keys().size(); ++i) lits.push_back(source.literal(chunks.text(r, static_cast<int>(i))) + "::text[]");
    out.rows_fetched += in.staging->append(
        source, "SELECT * FROM (" + src + ") s WHERE (" + pg::column_list(hash.key_names(), "s") + ") IN (SELECT " +
                    pg::join(casts, ", ") + " FROM unnest(" + pg::join(lits, ", ") + ") AS u(" +
                    pg::join(unnest_cols, ", ") + "))");
  }
  target.exec("ANALYZE " + in.deletions);
  target.exec("COMMIT");
  return out;
}

}  // namespace stagesync::delta
