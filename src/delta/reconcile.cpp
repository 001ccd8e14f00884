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

// Count and the sums of two halves of 64-bit row hashes (bits 32-63 and
// 0-30): digests of disjoint sets add up. The server sums int4 values into an
// int8, several times cheaper than a numeric sum of int8 values.
struct Digest {
  int64_t rows = 0;
  int64_t high = 0;
  int64_t low = 0;
  bool operator==(const Digest& o) const { return rows == o.rows && high == o.high && low == o.low; }
  Digest& operator+=(const Digest& o) {
    rows += o.rows;
    high += o.high;
    low += o.low;
    return *this;
  }
};
using Digests = std::map<int, Digest>;

// The text a value hashes as, the same on both servers: built-in types in the
// target's own type (so the source value is rounded as the target stores
// it), others as text.
std::string canonical(const std::string& alias, const plan::StagedColumn& c) {
  return "CAST(" + alias + "." + pg::ident(c.name) + " AS " + (c.target.builtin_type ? c.target.type : "text") + ")";
}

bool integer_column(const plan::StagedColumn& c) {
  return c.target.type == "smallint" || c.target.type == "integer" || c.target.type == "bigint";
}

class TableHash {
 public:
  TableHash(const plan::TablePlan& t, Method m, int buckets) : count_(buckets), mask_(std::to_string(buckets - 1)) {
    for (const auto& k : t.key) keys_.push_back(t.column(k));
    if (m == Method::Fingerprint) {
      for (const auto& c : t.columns)
        if (c.compare && std::find(t.key.begin(), t.key.end(), c.name) == t.key.end()) values_.push_back(&c);
    }
    integers_ = values_.empty() && std::all_of(keys_.begin(), keys_.end(), [](auto* c) { return integer_column(*c); });
  }
  // The row's hash over alias: the key (cursor) or key and compared values
  // (fingerprint). Integer keys hash as numbers (one seed per column, the
  // hashes combined by XOR), everything else as the row's text.
  std::string hash(const std::string& alias) const {
    std::vector<std::string> parts;
    if (integers_) {
      for (size_t i = 0; i < keys_.size(); ++i) {
        parts.push_back("pg_catalog.hashint8extended(CAST(" + alias + "." + pg::ident(keys_[i]->name) +
                        " AS bigint), " + std::to_string(i + 1) + ")");
      }
      return "(" + pg::join(parts, " # ") + ")";
    }
    for (const auto* c : keys_) parts.push_back(canonical(alias, *c));
    for (const auto* c : values_) parts.push_back(canonical(alias, *c));
    return "pg_catalog.hashtextextended(ROW(" + pg::join(parts, ", ") + ")::text, 0)";
  }
  std::string bucket(const std::string& h) const { return "((" + h + " >> 40) & " + mask_ + ")::int"; }
  // "The row with hash h is in one of `buckets`": one bit per bucket in a
  // bytea literal, so the test costs the same for one bucket or thousands.
  std::string in(const std::vector<int>& buckets, const std::string& h) const {
    std::string bits(static_cast<size_t>(count_ + 7) / 8, '\0');
    for (int b : buckets)
      bits[static_cast<size_t>(b) / 8] = static_cast<char>(bits[static_cast<size_t>(b) / 8] | (1 << (b % 8)));
    static const char* hex = "0123456789abcdef";
    std::string literal = "\\x";
    for (unsigned char c : bits) {
      literal += hex[c >> 4];
      literal += hex[c & 15];
    }
    return "pg_catalog.get_bit(" + pg::text_literal(literal) + "::bytea, " + bucket(h) + ") = 1";
  }
  // Per-bucket digests of the hashes `h` of the rows of `from`; rows where
  // `aside` holds are counted in bucket -1 (digested, never compared).
  std::string buckets(const std::string& h, const std::string& from, const std::string& aside = "false") const {
    return "SELECT b, count(*), sum((h >> 32)::int4), sum((h & 2147483647)::int4) FROM (SELECT CASE WHEN y.w THEN -1 "
           "ELSE " +
           bucket("y.h") + " END AS b, y.h FROM (SELECT " + h + " AS h, " + aside + " AS w " + from +
           ") y) z GROUP BY b";
  }
  const std::vector<const plan::StagedColumn*>& keys() const { return keys_; }
  std::vector<std::string> key_names() const {
    std::vector<std::string> out;
    for (const auto* c : keys_) out.push_back(c->name);
    return out;
  }

 private:
  int count_;
  std::string mask_;
  std::vector<const plan::StagedColumn*> keys_;
  std::vector<const plan::StagedColumn*> values_;
  bool integers_ = false;
};

Digests read_buckets(pg::Result r, Digests d = {}) {
  for (int i = 0; i < r.rows(); ++i) {
    d[static_cast<int>(r.int64(i, 0))] += Digest{r.int64(i, 1), r.int64(i, 2), r.int64(i, 3)};
  }
  return d;
}

// The rows of every bucket; then bucket -1 (rows set apart) is dropped.
int64_t take_rows(Digests& d) {
  int64_t n = 0;
  for (const auto& [b, digest] : d) n += digest.rows;
  d.erase(-1);
  return n;
}

// A planner setting for the statements between set_local() and
// unset_local(), in the connection's transaction. Both are deferred: they
// travel with the next statement (no round trip of their own). unset_local()
// gives back the value the session had (none of these is SET LOCAL earlier in
// the transactions they are used in).
void set_local(pg::Connection& c, const std::string& name, const std::string& value) {
  c.defer("SET LOCAL " + name + " = " + value);
}
void unset_local(pg::Connection& c, const std::string& name) { c.defer("SET LOCAL " + name + " TO DEFAULT"); }

// Runs `use` once per chunk of up to kFetchChunk distinct rows of `columns`
// of `from` (a table or "table alias WHERE ..." on the target), with the
// chunk as a source-side condition "(<matched>) IN (SELECT ...)" over the
// values (travelling as text arrays, cast back to `types`).
void for_each_key_chunk(pg::Connection& target, pg::Connection& source, const std::string& from,
                        const std::vector<std::string>& columns, const std::vector<std::string>& types,
                        const std::vector<std::string>& matched,
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
    use("(" + pg::join(matched, ", ") + ") IN (SELECT " + pg::join(casts, ", ") + " FROM unnest(" +
        pg::join(lits, ", ") + ") AS u(" + pg::join(names, ", ") + "))");
  }
}

// About 32 rows per bucket: few deletions spread over a table make few
// rows' (key, hash) pairs cross the network.
int bucket_count(int64_t rows) {
  int b = 64;
  while (b < 65536 && int64_t{b} * 32 < rows) b *= 2;
  return b;
}

}  // namespace

std::string deletions_table(pg::Connection& target, const apply::TableSql& t, const std::string& run_id, size_t index) {
  return stage::create_work_table(target, stage::work_table_name(run_id, index, "_d"), t.key_ddl());
}

TextSettings read_text_settings(pg::Connection& source) {
  TextSettings s;
  const std::vector<std::string> names = {"DateStyle", "IntervalStyle", "TimeZone", "extra_float_digits",
                                          "bytea_output"};
  std::vector<std::string> reads;
  for (const auto& name : names) reads.push_back("pg_catalog.current_setting(" + pg::text_literal(name) + ")");
  pg::Result r = source.exec("SELECT " + pg::join(reads, ", "));
  for (size_t i = 0; i < names.size(); ++i) s.values.emplace_back(names[i], r.text(0, static_cast<int>(i)));
  return s;
}

std::string text_hash_probe() {
  return "SELECT pg_catalog.hashtextextended('stagesync fingerprint probe: 42, \xc3\xa9', 7)";
}

Reconciled reconcile(pg::Connection& source, pg::Connection& target, const ReconcileInput& in,
                     std::vector<std::string>& created) {
  const apply::TableSql& t = *in.table;
  const plan::TablePlan& p = t.table();
  Reconciled out;
  TableHash hash(p, in.method, bucket_count(in.estimated_rows));
  bool cursor = in.method == Method::Cursor;
  bool carry = cursor && !in.previous_run_id.empty();
  std::string keys = pg::column_list(hash.key_names());

  // The transaction's settings travel with its first statement.
  target.defer("BEGIN");
  target.defer("SET LOCAL enable_sort = off");
  // A hash aggregate of every bucket in memory, not spilled in partitions.
  target.defer("SET LOCAL work_mem = '64MB'");
  for (const auto& [name, value] : in.settings.values) {
    target.defer("SELECT pg_catalog.set_config($1, $2, true)", std::vector<pg::Param>{name, value});
  }
  auto work_table = [&](const std::string& suffix, const std::string& columns) {
    created.push_back(stage::create_work_table(target, stage::work_table_name(in.run_id, in.index, suffix), columns));
    return created.back();
  };
  out.deletions = deletions_table(target, t, in.run_id, in.index);
  created.push_back(out.deletions);
  std::string want = work_table("_w", t.key_ddl());

  // Keys the previous run set aside (cursor method), as recorded (key text,
  // column: NULL for a key collision, the reference's columns for an orphan,
  // reason), with the key's values: each JSON key parsed once.
  std::string known = work_table("_r", t.key_ddl() + ", column_name text, row_key text, reason text");
  if (carry) {
    std::vector<std::string> present, record;
    for (const auto* c : hash.keys()) {
      present.push_back("j." + pg::ident(c->name) + " IS NOT NULL");
      record.push_back(pg::ident(c->name) + " " + c->stage_type);
    }
    target.defer("INSERT INTO " + known + " SELECT " + pg::column_list(hash.key_names(), "j") +
                     ", x.column_name, x.row_key, x.reason FROM stagesync.rejects x, LATERAL "
                     "pg_catalog.json_to_record(x.row_key::json) AS j(" +
                     pg::join(record, ", ") +
                     ") WHERE x.run_id = $1 "
                     "AND x.table_name = $2 AND x.row_key LIKE '{%' AND " +
                     pg::join(present, " AND "),
                 std::vector<pg::Param>{in.previous_run_id, p.target_name});
    target.defer("ANALYZE " + known);
  }

  // Per-bucket digests, computed by both servers at once.
  std::string src = stage::source_select(p, source);
  // Rows with a NULL key can never be matched (every run sets them aside):
  // they are not part of the key set.
  std::vector<std::string> key_present;
  for (const auto& k : hash.key_names()) key_present.push_back("s." + pg::ident(k) + " IS NOT NULL");
  const std::string present = " WHERE " + pg::join(key_present, " AND ");
  const std::string source_rows = "FROM (" + src + ") s" + present;
  // The cursor method hashes keys only: read without lookups or other columns.
  const std::string source_keys = cursor ? "FROM (" + stage::key_select(p, source) + ") s" + present : source_rows;
  std::string source_from = source_keys, source_aside = "false";
  pg::Params params;
  std::string target_from = "FROM " + t.target() + " t WHERE " + t.owned("t", params), target_aside = "false";
  if (cursor) {
    // The staged rows (the change window) are set apart on both sides: the
    // source rows outside the window are compared with the owned target rows
    // whose key was not staged, plus the set-aside keys not staged. With
    // nothing else changed, the same key sets. Staging is the small side of
    // the join.
    source_from = "FROM (" +
                  stage::key_select(p, source, "(" + (in.window.empty() ? "false" : in.window) + ") IS TRUE") + ") s" +
                  present;
    source_aside = "s.w";
    params = pg::Params{};
    target_from = "FROM " + t.target() + " t LEFT JOIN (SELECT DISTINCT " + keys + " FROM " + t.staging() + ") s ON " +
                  t.same_key("s", "t") + " WHERE " + t.owned("t", params);
    target_aside = "s." + pg::ident(p.key.front()) + " IS NOT NULL";
  }
  set_local(source, "enable_sort", "off");
  set_local(source, "work_mem", "'64MB'");
  set_local(target, "enable_nestloop", "off");
  std::string target_digest = hash.buckets(hash.hash("t"), target_from, target_aside);
  constexpr int kSetAside = 1 << 30;  // the set-aside keys' buckets, told apart in the same answer
  if (cursor) {
    // A key set aside for two reasons counts once.
    target_digest += " UNION ALL SELECT b + " + std::to_string(kSetAside) + ", count, sum, sum_1 FROM (" +
                     hash.buckets(hash.hash("r"), "FROM (SELECT DISTINCT " + keys + " FROM " + known +
                                                      ") r WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() +
                                                      " s WHERE " + t.same_key("s", "r") + ")") +
                     ") a(b, count, sum, sum_1)";
  }
  source.send(hash.buckets(hash.hash("s"), source_from, source_aside), pg::Params{});
  target.send(target_digest, params);
  Digests theirs = read_buckets(source.receive());
  Digests ours = read_buckets(target.receive());
  Digests set_aside;
  for (auto it = ours.begin(); it != ours.end();) {
    if (it->first < kSetAside / 2) {
      ++it;
      continue;
    }
    set_aside[it->first - kSetAside] = it->second;
    it = ours.erase(it);
  }
  out.source_rows = take_rows(theirs);
  out.target_owned = take_rows(ours);
  for (const auto& [b, d] : set_aside) ours[b] += d;
  unset_local(source, "enable_sort");
  unset_local(source, "work_mem");
  unset_local(target, "enable_nestloop");
  std::vector<int> differing;
  for (const auto& [b, d] : theirs) {
    auto it = ours.find(b);
    if (it == ours.end() || !(it->second == d)) differing.push_back(b);
  }
  for (const auto& [b, d] : ours)
    if (!theirs.count(b)) differing.push_back(b);

  std::string pairs;  // (key, hash) of the source rows in the differing buckets
  if (!differing.empty()) {
    pairs = work_table("_k", t.key_ddl() + ", h bigint");
    stage::pipe_copy(
        source,
        stage::binary_copy_out("SELECT " + keys + ", h FROM (SELECT " + pg::column_list(hash.key_names(), "s") + ", " +
                               hash.hash("s") + " AS h " + source_keys + ") x WHERE " + hash.in(differing, "x.h")),
        target, "COPY " + pairs + " (" + keys + ", h) FROM STDIN (FORMAT binary)");
    target.defer("ANALYZE " + pairs);
    std::string t_hash = hash.hash("t");
    // Work tables against work tables: hashed, never a nested loop (the
    // planner misjudges freshly filled tables; one such loop took 14 s).
    set_local(target, "enable_nestloop", "off");
    pg::Params dp;
    std::string downed = t.owned("t", dp);
    // Deferred, like every statement up to the count below: one round trip for all.
    target.defer("INSERT INTO " + out.deletions + " SELECT " + pg::column_list(hash.key_names(), "t") + " FROM " +
                     t.target() + " t WHERE " + downed + " AND " + hash.in(differing, t_hash) +
                     " AND NOT EXISTS (SELECT 1 FROM " + pairs + " k WHERE " + t.same_key("k", "t") + ")",
                 std::vector<pg::Param>(dp.values().begin(), dp.values().end()));
    // Rows to fetch: source keys neither staged nor set aside...
    target.defer("INSERT INTO " + want + " SELECT " + pg::column_list(hash.key_names(), "k") + " FROM " + pairs +
                 " k WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "k") +
                 ") AND NOT EXISTS (SELECT 1 FROM " + known + " s WHERE " + t.same_key("s", "k") + ")");
    unset_local(target, "enable_nestloop");
    target.defer("ANALYZE " + want);
    // ... that the target does not hold as an owned row (for fingerprints:
    // with the same fingerprint; for the cursor method a key's hash is the
    // key's own). Few keys against a large table: index lookups if it has one.
    pg::Params wp;
    std::string wowned = t.owned("t", wp);
    std::string same = cursor ? t.same_key("t", "w")
                              : t.same_key("t", "w") + " AND EXISTS (SELECT 1 FROM " + pairs + " k WHERE " +
                                    t.same_key("k", "w") + " AND k.h = " + t_hash + ")";
    set_local(target, "random_page_cost", "1.1");  // see Session::begin()
    target.defer("DELETE FROM " + want + " w WHERE EXISTS (SELECT 1 FROM " + t.target() + " t WHERE " + same + " AND " +
                     wowned + ")",
                 std::vector<pg::Param>(wp.values().begin(), wp.values().end()));
    unset_local(target, "random_page_cost");
    // Keys the source holds twice are read, so `duplicates` judges all their rows.
    target.defer("INSERT INTO " + want + " SELECT " + keys + " FROM " + pairs + " GROUP BY " + keys +
                 " HAVING count(*) > 1");
  }
  // Deferred: answered with the fetch's first statement below (always sent, before this function returns).
  target.defer("SELECT count(*) FROM " + out.deletions, {},
               [&out](pg::Result& r) { out.deletion_count = r.int64(0, 0); });

  const std::string not_staged = "NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "r") + ")";
  if (carry) {
    // Set-aside keys that may pass now are fetched and judged again.
    std::string retry = "(r.column_name IS NULL AND NOT EXISTS (SELECT 1 FROM " + t.target() + " t WHERE " +
                        t.same_key("t", "r") + "))" + (in.retry_orphans ? " OR r.column_name IS NOT NULL" : "");
    target.defer("INSERT INTO " + want + " SELECT " + pg::column_list(hash.key_names(), "r") + " FROM " + known +
                 " r WHERE " + not_staged + " AND (" + retry + ")");
  }
  for (const auto& select : in.also_fetch) target.defer("INSERT INTO " + want + " " + select);
  std::vector<std::string> key_types;
  for (const auto* c : hash.keys()) key_types.push_back(c->stage_type);
  for (const auto& parent : in.children_of) {
    std::vector<std::string> types;
    for (const auto& c : parent.columns) types.push_back(p.column(c)->stage_type);
    std::vector<std::string> matched;
    for (const auto& c : parent.columns) matched.push_back("s." + pg::ident(c));
    for_each_key_chunk(target, source, parent.staging, parent.parent_columns, types, matched,
                       [&](const std::string& children) {
                         stage::pipe_copy(source,
                                          stage::binary_copy_out("SELECT " + pg::column_list(hash.key_names(), "s") +
                                                                 " FROM (" + src + ") s WHERE " + children),
                                          target, "COPY " + want + " (" + keys + ") FROM STDIN (FORMAT binary)");
                       });
  }

  // Fetch the wanted rows from the source, a chunk of keys at a time. Keys
  // read from the source table itself are matched there, before the lookups
  // (which then aggregate only the chunk's match values).
  // (Matched as the staging type, as the values are: the source column's own type may differ.)
  bool keys_read = std::none_of(hash.keys().begin(), hash.keys().end(), [](auto* c) { return c->lookup >= 0; });
  std::vector<std::string> matched;
  for (const auto* c : hash.keys()) {
    matched.push_back(keys_read ? "t." + pg::ident(c->name) + "::" + c->stage_type : "s." + pg::ident(c->name));
  }
  for_each_key_chunk(
      target, source,
      want + " w WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "w") + ")",
      hash.key_names(), key_types, matched, [&](const std::string& wanted) {
        out.rows_fetched += in.staging->append(source, keys_read ? stage::source_select(p, source, wanted)
                                                                 : "SELECT * FROM (" + src + ") s WHERE " + wanted);
      });
  if (carry) {
    // The set-aside keys not read again stay set aside, recorded for this run,
    // unless the source no longer has them (their bucket differed and the
    // source sent no such key). Copied as recorded, not read again from
    // stagesync.rejects. The pairs are joined: a NOT EXISTS inside an
    // expression would scan them once per row.
    std::string pairs_join, gone = "false";
    if (!pairs.empty()) {
      pairs_join = " LEFT JOIN (SELECT DISTINCT " + keys + " FROM " + pairs + ") k ON " + t.same_key("k", "r");
      gone = hash.in(differing, hash.hash("r")) + " AND k." + pg::ident(p.key.front()) + " IS NULL";
    }
    // Anti-joins of up to every row: hashed, never a nested loop (the planner
    // misjudges freshly filled work tables; a nested loop here took minutes).
    set_local(target, "enable_nestloop", "off");
    int64_t* carried = in.rejects_carried;
    target.defer("INSERT INTO " + in.run_rejects +
                     " (table_name, row_key, column_name, reason) SELECT $1, r.row_key, r.column_name, r.reason FROM " +
                     known + " r" + pairs_join + " WHERE " + not_staged + " AND NOT (" + gone + ")",
                 std::vector<pg::Param>{p.target_name}, [carried](pg::Result& r) {
                   if (carried) *carried = r.affected();
                 });
    unset_local(target, "enable_nestloop");
  }
  // Deferred: they travel with the target's next statement (the next table's
  // staging, or the apply). Only work tables were written in this transaction.
  target.defer("ANALYZE " + out.deletions);
  target.defer("COMMIT");
  return out;
}

}  // namespace stagesync::delta
