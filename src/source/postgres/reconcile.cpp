#include "source/postgres/reconcile.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "pg/copy_pipe.h"
#include "pg/sql.h"
#include "source/postgres/buckets.h"
#include "source/postgres/newest_keys.h"
#include "source/postgres/source_query.h"
#include "stage/staging_table.h"

namespace stagesync::source::postgres {
namespace {

constexpr int64_t kFetchChunk = 10000;  // keys per fetch statement

using Digest = BucketDigest;
using Digests = BucketDigests;

// The text a value hashes as, the same on both servers: built-in types in the
// target's own type (so the source value is rounded as the target stores
// it), others as text.
std::string canonical(const std::string& alias, const plan::StagedColumn& c) {
  return "CAST(" + alias + "." + pg::ident(c.name) + " AS " + (c.target.builtin_type ? c.target.type : "text") + ")";
}

bool integer_column(const plan::StagedColumn& c) {
  return c.target.type == "smallint" || c.target.type == "integer" || c.target.type == "bigint";
}

class TableHash : public Buckets {
 public:
  TableHash(const plan::TablePlan& t, delta::Method m, int buckets) : Buckets(buckets) {
    for (const auto& k : t.key) keys_.push_back(t.column(k));
    if (m == delta::Method::Fingerprint) {
      for (const auto& c : t.columns)
        if (c.compare && std::find(t.key.begin(), t.key.end(), c.name) == t.key.end()) values_.push_back(&c);
    } else if (m == delta::Method::Cursor && t.duplicates.keep_newest) {
      values_.push_back(t.column(t.duplicates.by));  // (key, greatest by): newest_keys()
    }
    integers_ = values_.empty() && std::all_of(keys_.begin(), keys_.end(), [](auto* c) { return integer_column(*c); });
  }
  // The row's hash over alias: the key (cursor; keep newest: and `by`) or key
  // and compared values (fingerprint). Integer keys hash as numbers (one seed per column, the
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
  const std::vector<const plan::StagedColumn*>& keys() const { return keys_; }
  std::vector<std::string> key_names() const {
    std::vector<std::string> out;
    for (const auto* c : keys_) out.push_back(c->name);
    return out;
  }

 private:
  std::vector<const plan::StagedColumn*> keys_;
  std::vector<const plan::StagedColumn*> values_;
  bool integers_ = false;
};

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

// The target query splitting the distinct rows of `columns` of `from` (a
// table or "table alias WHERE ...") into chunks of up to kFetchChunk rows,
// each row of its answer one chunk: the values as text arrays.
std::string chunk_query(const std::string& from, const std::vector<std::string>& columns) {
  std::vector<std::string> arrays;
  for (const auto& c : columns) arrays.push_back("pg_catalog.array_agg(" + pg::ident(c) + "::text)::text");
  std::string cols = pg::column_list(columns);
  return "SELECT " + pg::join(arrays, ", ") + " FROM (SELECT " + cols + ", (row_number() OVER () - 1) / " +
         std::to_string(kFetchChunk) + " AS g FROM (SELECT DISTINCT " + cols + " FROM " + from + ") d) x GROUP BY g";
}

// Per chunk of chunk_query()'s answer, a source-side SELECT of its key
// tuples (cast back to `types`: keys_select()).
std::vector<std::string> chunk_selects(pg::Connection& source, const pg::Result& chunks,
                                       const std::vector<std::string>& types) {
  std::vector<std::string> out;
  for (int r = 0; r < chunks.rows(); ++r) {
    std::vector<std::string> arrays;
    for (size_t i = 0; i < types.size(); ++i) arrays.push_back(chunks.text(r, static_cast<int>(i)));
    out.push_back(keys_select(source, types, arrays));
  }
  return out;
}

}  // namespace

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

std::string keys_select(pg::Connection& conn, const std::vector<std::string>& types,
                        const std::vector<std::string>& arrays) {
  std::vector<std::string> casts, names, lits;
  for (size_t i = 0; i < types.size(); ++i) {
    casts.push_back("CAST(u.a" + std::to_string(i) + " AS " + types[i] + ")");
    names.push_back("a" + std::to_string(i));
    lits.push_back(conn.literal(arrays.at(i)) + "::text[]");
  }
  return "SELECT " + pg::join(casts, ", ") + " FROM unnest(" + pg::join(lits, ", ") + ") AS u(" +
         pg::join(names, ", ") + ")";
}

std::string keys_in(pg::Connection& conn, const std::vector<std::string>& matched,
                    const std::vector<std::string>& types, const std::vector<std::string>& arrays) {
  return "(" + pg::join(matched, ", ") + ") IN (" + keys_select(conn, types, arrays) + ")";
}

std::string text_hash_probe() {
  return "SELECT pg_catalog.hashtextextended('stagesync fingerprint probe: 42, \xc3\xa9', 7)";
}

namespace {

TableHash table_hash(const ReconcileInput& in) {
  return TableHash(in.table->table(), in.method, bucket_count(in.estimated_rows));
}

// duplicates: keep newest under the cursor: the digests hash (key, greatest
// `by`) per source key and (key, `by`) per target row (newest_keys.h).
bool newest(const ReconcileInput& in) {
  return in.method == delta::Method::Cursor && in.table->table().duplicates.keep_newest;
}

// Rows with a NULL key can never be matched (every run sets them aside): they are not part of the key set.
std::string key_present(const TableHash& hash) {
  std::vector<std::string> present;
  for (const auto& k : hash.key_names()) present.push_back("s." + pg::ident(k) + " IS NOT NULL");
  return " WHERE " + pg::join(present, " AND ");
}

// "FROM (<the keys the digests hash, alias s>) s WHERE <key present>": the
// cursor method hashes keys only (read without lookups or other columns).
std::string source_keys(const ReconcileInput& in, pg::Connection& source, const TableHash& hash) {
  const plan::TablePlan& p = in.table->table();
  if (newest(in)) return "FROM (" + newest_keys(p, source, "") + ") s";
  std::string select = in.method == delta::Method::Cursor ? key_select(p, source) : source_select(p, source);
  return "FROM (" + select + ") s" + key_present(hash);
}

// Keys read from the source table itself are matched there, before the
// lookups (which then aggregate only the chunk's match values).
bool keys_read(const TableHash& hash) {
  return std::none_of(hash.keys().begin(), hash.keys().end(), [](auto* c) { return c->lookup >= 0; });
}

// What the fetch's conditions match the wanted keys with: the source table's
// key columns (alias t, for source_select()'s condition) when
// keys_read(), else the staged row's (alias s). As the staging type, as the
// values are: the source column's own type may differ.
std::vector<std::string> fetch_matched(const TableHash& hash) {
  std::vector<std::string> matched;
  for (const auto* c : hash.keys()) {
    matched.push_back(keys_read(hash) ? "t." + pg::ident(c->name) + "::" + c->stage_type : "s." + pg::ident(c->name));
  }
  return matched;
}

constexpr int kSetAside = 1 << 30;  // the set-aside keys' buckets, told apart in the same answer

// Whether a key's text in a set-aside row (TableSql::key_json() of the staged
// row) is the same for the same key in every session: then a staged or listed
// key finds its set-aside rows by that text (an index probe), with no JSON
// parsed. Not so for types whose text follows settings (timestamptz: TimeZone;
// floating point: extra_float_digits) or that are not built in.
bool keys_print_alike(const TableHash& hash) {
  static const char* alike[] = {"int2", "int4",    "int8", "text",      "varchar", "bpchar",
                                "uuid", "numeric", "date", "timestamp", "bool"};
  return std::all_of(hash.keys().begin(), hash.keys().end(), [](const plan::StagedColumn* c) {
    return std::any_of(std::begin(alike), std::end(alike),
                       [c](const char* t) { return c->stage_type == pg::qualified("pg_catalog", t); });
  });
}

}  // namespace

Reconciliation::Reconciliation(pg::Connection& source, pg::Connection& target, ReconcileInput in,
                               std::vector<std::string>& created)
    : source_(source), target_(target), in_(std::move(in)), created_(created) {
  out_.deletions = delta::deletions_table(target_, *in_.table, in_.run_id, in_.index);
  created_.push_back(out_.deletions);
}

std::string Reconciliation::listed_select() const {
  TableHash hash = table_hash(in_);
  std::vector<std::string> types;
  for (const auto* c : hash.keys()) types.push_back(c->stage_type);
  return keys_select(target_, types, in_.listed);
}

std::string Reconciliation::listed(const std::string& alias) const {
  return "(" + pg::column_list(table_hash(in_).key_names(), alias) + ") IN (" + listed_select() + ")";
}

void Reconciliation::defer_target_digests() {
  const apply::TableSql& t = *in_.table;
  const plan::TablePlan& p = t.table();
  TableHash hash = table_hash(in_);
  bool logical = in_.method == delta::Method::Logical;
  bool cursor = in_.method == delta::Method::Cursor || logical;  // (set-aside keys alike)
  std::string keys = pg::column_list(hash.key_names());
  auto work_table = [&](const std::string& suffix, const std::string& columns) {
    created_.push_back(
        stage::create_work_table(target_, stage::work_table_name(in_.run_id, in_.index, suffix), columns));
    return created_.back();
  };
  want_ = work_table("_w", t.key_ddl());
  if (in_.extra) in_.extra->defer_target();

  // Keys currently set aside (cursor and logical methods; stagesync.set_aside,
  // decision 0016), as recorded (key text, column: NULL for a key collision,
  // the reference's columns for an orphan, reason), with the key's values:
  // each JSON key parsed once. A key with a NULL part can never be matched:
  // it is released (stays set aside only when this run reads its row again).
  // keep newest: a `by` column, always NULL (the source's value is not
  // known): a set-aside key's bucket differs, its pair comes over, and it
  // stays set aside as before (not fetched).
  std::string by_ddl, by_column;
  if (newest(in_)) {
    const plan::StagedColumn& by = *p.column(p.duplicates.by);
    by_ddl = ", " + pg::ident(by.name) + " " + by.target.type;
    by_column = ", " + pg::ident(by.name);
  }
  known_ = work_table("_r", t.key_ddl() + ", column_name text, row_key text, reason text" + by_ddl);
  // Logical method, keys that print alike: only the keys that may be retried
  // are parsed (collisions; orphans when retry_orphans, rare: a parent read
  // whole); the staged and listed keys find their set-aside rows by text
  // (defer_finish()). The cursor method's digests count every set-aside key.
  by_text_ = logical && keys_print_alike(hash);
  std::string which = by_text_ && !in_.retry_orphans ? " AND x.column_name IS NULL" : "";
  if (cursor && !in_.previous_run_id.empty()) {
    std::vector<std::string> present, record;
    for (const auto* c : hash.keys()) {
      present.push_back("j." + pg::ident(c->name) + " IS NOT NULL");
      record.push_back(pg::ident(c->name) + " " + c->stage_type);
    }
    target_.defer("WITH x AS (SELECT " + pg::column_list(hash.key_names(), "j") + ", (" + pg::join(present, " AND ") +
                      ") AS present, x.column_name, x.row_key, x.reason FROM stagesync.set_aside x, LATERAL "
                      "pg_catalog.json_to_record(x.row_key::json) AS j(" +
                      pg::join(record, ", ") + ") WHERE x.table_name = $1 AND x.row_key LIKE '{%'" + which +
                      "), released AS (INSERT INTO " + stage::released_table(in_.run_id) +
                      " (table_name, row_key) SELECT $1, row_key FROM x WHERE NOT present AND " +
                      (by_text_ ? "false" : "true") + ") INSERT INTO " + known_ + " SELECT " + keys +
                      ", column_name, row_key, reason FROM x WHERE present",
                  std::vector<pg::Param>{p.target_name});
    // Its statistics serve the hashed anti-joins below (row count, distinct
    // keys): a small sample does (tens of thousands of orphans took 0.1-0.2 s
    // to analyse at the default target).
    set_local(target_, "default_statistics_target", "10");
    target_.defer("ANALYZE " + known_);
    unset_local(target_, "default_statistics_target");
  }
  if (logical) return;  // no digests: the listed keys are the changes

  pg::Params params;
  std::string target_from = "FROM " + t.target() + " t WHERE " + t.owned("t", params), target_aside = "false";
  if (cursor) {
    // The staged rows (the change window) are set apart on both sides: the
    // source rows outside the window are compared with the owned target rows
    // whose key was not staged, plus the set-aside keys not staged. With
    // nothing else changed, the same key sets. Staging is the small side of
    // the join.
    params = pg::Params{};
    target_from = "FROM " + t.target() + " t LEFT JOIN (SELECT DISTINCT " + keys + " FROM " + t.staging() + ") s ON " +
                  t.same_key("s", "t") + " WHERE " + t.owned("t", params);
    target_aside = "s." + pg::ident(p.key.front()) + " IS NOT NULL";
  }
  std::string digest = hash.buckets(hash.hash("t"), target_from, target_aside);
  if (cursor) {
    // A key set aside for two reasons counts once.
    digest += " UNION ALL SELECT b + " + std::to_string(kSetAside) + ", count, sum, sum_1 FROM (" +
              hash.buckets(hash.hash("r"), "FROM (SELECT DISTINCT " + keys + by_column + " FROM " + known_ +
                                               ") r WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " +
                                               t.same_key("s", "r") + ")") +
              ") a(b, count, sum, sum_1)";
  }
  set_local(target_, "enable_nestloop", "off");
  target_.defer(digest, std::vector<pg::Param>(params.values().begin(), params.values().end()),
                [this](pg::Result& r) { ours_ = read_buckets(std::move(r)); });
  unset_local(target_, "enable_nestloop");
}

void Reconciliation::source_digests() {
  if (in_.extra) in_.extra->source();
  if (in_.method == delta::Method::Logical) return;
  const plan::TablePlan& p = in_.table->table();
  TableHash hash = table_hash(in_);
  std::string from = source_keys(in_, source_, hash), aside = "false";
  if (in_.method == delta::Method::Cursor) {
    // Rows with a NULL key are counted (as the counting scan counts every
    // in-scope row: PostgresSource::counted_by_digests()), set apart like the window.
    std::vector<std::string> null_key;
    for (const auto& k : hash.key_names()) null_key.push_back("s." + pg::ident(k) + " IS NULL");
    from = "FROM (" + key_select(p, source_, "(" + (in_.window.empty() ? "false" : in_.window) + ") IS TRUE") + ") s";
    aside = "s.w OR " + pg::join(null_key, " OR ");
  }
  set_local(source_, "enable_sort", "off");
  set_local(source_, "work_mem", "'64MB'");
  if (newest(in_)) {
    // One row per key (a key's rows are all in the window or none is); the
    // same pass counts the rows and sees ties for the next run's watermark.
    pg::Result r =
        source_.exec("SELECT CASE WHEN y.w THEN -1 ELSE " + hash.bucket("y.h") +
                     " END AS b, count(*), sum((y.h >> 32)::int4), sum((y.h & 2147483647)::int4), sum(y.n)::bigint, "
                     "bool_or(y.tie) FROM (SELECT " +
                     hash.hash("s") + " AS h, s.w, s.n, s.tie FROM (" +
                     newest_keys(p, source_, in_.window.empty() ? "false" : in_.window) + ") s) y GROUP BY 1");
    int64_t rows = 0;
    bool tie = false;
    for (int i = 0; i < r.rows(); ++i) {
      rows += r.int64(i, 4);
      tie = tie || r.text(i, 5) == "t";
    }
    theirs_ = read_buckets(std::move(r));
    newest_rows_ = rows;
    out_.ties = tie ? 1 : 0;
  } else {
    theirs_ = read_buckets(source_.exec(hash.buckets(hash.hash("s"), from, aside)));
  }
  unset_local(source_, "enable_sort");
  unset_local(source_, "work_mem");
}

void Reconciliation::compare() {
  if (in_.method == delta::Method::Logical) return;  // nothing counted, nothing differs
  const apply::TableSql& t = *in_.table;
  Digests set_aside;
  for (auto it = ours_.begin(); it != ours_.end();) {
    if (it->first < kSetAside / 2) {
      ++it;
      continue;
    }
    set_aside[it->first - kSetAside] = it->second;
    it = ours_.erase(it);
  }
  out_.source_rows = take_rows(theirs_);
  if (newest(in_)) out_.source_rows = newest_rows_;  // (the digests counted keys)
  out_.target_owned = take_rows(ours_);
  for (const auto& [b, d] : set_aside) ours_[b] += d;
  differing_ = differing_buckets(ours_, theirs_);
  if (differing_.empty()) return;
  // (key, hash) of the source rows in the differing buckets.
  pairs_ = stage::create_work_table(target_, stage::work_table_name(in_.run_id, in_.index, "_k"),
                                    t.key_ddl() + ", h bigint");
  created_.push_back(pairs_);
}

std::vector<stage::CopyChain::Copy> Reconciliation::take_copies() {
  std::vector<stage::CopyChain::Copy> copies = std::exchange(in_.copies, {});
  if (in_.extra)
    for (auto& copy : in_.extra->copies()) copies.push_back(std::move(copy));
  return copies;
}

std::string Reconciliation::pairs_select(int tag) const {
  TableHash hash = table_hash(in_);
  std::vector<std::string> texts;
  for (const auto& k : hash.key_names()) texts.push_back("x." + pg::ident(k) + "::text");
  return "SELECT " + std::to_string(tag) + " AS t, ARRAY[" + pg::join(texts, ", ") + "] AS k, x.h FROM (SELECT " +
         pg::column_list(hash.key_names(), "s") + ", " + hash.hash("s") + " AS h " + source_keys(in_, source_, hash) +
         ") x WHERE " + hash.in(differing_, "x.h");
}

std::vector<std::string> Reconciliation::pairs_fill(const std::string& bundle, int tag) const {
  TableHash hash = table_hash(in_);
  std::vector<std::string> casts;
  for (size_t i = 0; i < hash.keys().size(); ++i) {
    casts.push_back("CAST(b.k[" + std::to_string(i + 1) + "] AS " + hash.keys()[i]->stage_type + ")");
  }
  return {"INSERT INTO " + pairs_ + " (" + pg::column_list(hash.key_names()) + ", h) SELECT " + pg::join(casts, ", ") +
              ", b.h FROM " + bundle + " b WHERE b.t = " + std::to_string(tag),
          "ANALYZE " + pairs_};
}

void Reconciliation::defer_wanted() {
  const apply::TableSql& t = *in_.table;
  TableHash hash = table_hash(in_);
  bool cursor = in_.method == delta::Method::Cursor;
  bool logical = in_.method == delta::Method::Logical;
  std::string keys = pg::column_list(hash.key_names());
  if (logical && !in_.listed.empty()) {
    // The listed keys the staged rows (every in-scope source row of a listed
    // key) do not hold: deleted at the source, or out of its scope now. The
    // target is not probed for them: the list may hold keys of no owned row
    // (as a collision's key is there), and every reader of it asks for owned
    // rows itself (the DELETE, the guards' and the plan's counts, a parent's
    // surviving rows, its children to read again). Probing cost an index
    // lookup per key into a large table (0.1-0.3 s per table at scale 10),
    // repeated by each of those readers anyway.
    target_.defer("INSERT INTO " + out_.deletions + " SELECT * FROM (" + listed_select() + ") AS l(" + keys +
                  ") WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "l") + ")");
  }
  if (!pairs_.empty()) {
    std::string t_hash = hash.hash("t");
    // Work tables against work tables: hashed, never a nested loop (the
    // planner misjudges freshly filled tables; one such loop took 14 s).
    set_local(target_, "enable_nestloop", "off");
    pg::Params dp;
    std::string downed = t.owned("t", dp);
    // A staged key is the source's: never a deletion. (Keep newest needs it:
    // a key staged from the window is set apart on both sides, but its target
    // row still hashes its old (key, `by`), in a bucket that may differ for
    // another key while the source's new (key, `by`) falls in one that does
    // not, so the pairs lack it.)
    std::string unstaged = " AND NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "t") + ")";
    target_.defer("INSERT INTO " + out_.deletions + " SELECT " + pg::column_list(hash.key_names(), "t") + " FROM " +
                      t.target() + " t WHERE " + downed + " AND " + hash.in(differing_, t_hash) +
                      " AND NOT EXISTS (SELECT 1 FROM " + pairs_ + " k WHERE " + t.same_key("k", "t") + ")" + unstaged,
                  std::vector<pg::Param>(dp.values().begin(), dp.values().end()));
    // Rows to fetch: source keys neither staged nor set aside...
    target_.defer("INSERT INTO " + want_ + " SELECT " + pg::column_list(hash.key_names(), "k") + " FROM " + pairs_ +
                  " k WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "k") +
                  ") AND NOT EXISTS (SELECT 1 FROM " + known_ + " s WHERE " + t.same_key("s", "k") + ")");
    unset_local(target_, "enable_nestloop");
    target_.defer("ANALYZE " + want_);
    // ... that the target does not hold as an owned row (for fingerprints:
    // with the same fingerprint; for the cursor method a key's hash is the
    // key's own, except for keep newest: with the same greatest `by`). Few keys against a large table: index lookups if
    // it has one.
    pg::Params wp;
    std::string wowned = t.owned("t", wp);
    std::string same = cursor && !newest(in_) ? t.same_key("t", "w")
                                              : t.same_key("t", "w") + " AND EXISTS (SELECT 1 FROM " + pairs_ +
                                                    " k WHERE " + t.same_key("k", "w") + " AND k.h = " + t_hash + ")";
    set_local(target_, "random_page_cost", "1.1");  // see Session::planner_regime()
    target_.defer("DELETE FROM " + want_ + " w WHERE EXISTS (SELECT 1 FROM " + t.target() + " t WHERE " + same +
                      " AND " + wowned + ")",
                  std::vector<pg::Param>(wp.values().begin(), wp.values().end()));
    unset_local(target_, "random_page_cost");
    // Keys the source holds twice are read, so `duplicates` judges all their rows.
    target_.defer("INSERT INTO " + want_ + " SELECT " + keys + " FROM " + pairs_ + " GROUP BY " + keys +
                  " HAVING count(*) > 1");
  }
  target_.defer("SELECT count(*) FROM " + out_.deletions, {},
                [this](pg::Result& r) { out_.deletion_count = r.int64(0, 0); });
  if ((cursor || logical) && !in_.previous_run_id.empty()) {
    // Set-aside keys that may pass now are fetched and judged again.
    std::string retry = "(r.column_name IS NULL AND NOT EXISTS (SELECT 1 FROM " + t.target() + " t WHERE " +
                        t.same_key("t", "r") + "))" + (in_.retry_orphans ? " OR r.column_name IS NOT NULL" : "");
    target_.defer("INSERT INTO " + want_ + " SELECT " + pg::column_list(hash.key_names(), "r") + " FROM " + known_ +
                  " r WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "r") + ") AND (" +
                  retry + ")");
  }
  for (const auto& select : in_.also_fetch) target_.defer("INSERT INTO " + want_ + " " + select);
  if (in_.extra)
    for (const auto& select : in_.extra->also_fetch()) target_.defer("INSERT INTO " + want_ + " " + select);

  // The wanted keys not staged yet, a chunk at a time (fetch() reads them).
  target_.defer(chunk_query(want_ + " w WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " +
                                t.same_key("s", "w") + ")",
                            hash.key_names()),
                {}, [this](pg::Result& r) {
                  TableHash h = table_hash(in_);
                  std::vector<std::string> types;
                  for (const auto* c : h.keys()) types.push_back(c->stage_type);
                  wanted_ = chunk_selects(source_, r, types);
                });
}

void Reconciliation::fetch(stage::CopyChain& chain, const std::vector<std::vector<std::string>>& parents_staged) {
  const apply::TableSql& t = *in_.table;
  const plan::TablePlan& p = t.table();
  TableHash hash = table_hash(in_);
  // Children of the parents' staged rows: every row of their keys (as a
  // fetch by key reads them); those whose key is staged already are left out
  // on the target.
  std::string src = source_select(p, source_);
  // What to read, as sets of key tuples: the wanted keys' chunks, then per
  // parent the keys of the children of its staged rows. One IN over their
  // UNION ALL, never an OR of INs: the planner makes a semi join of the one,
  // but filters every row through each of the others (at scale 10 a 1%
  // change spent minutes in such a filter once a subplan outgrew hash memory).
  std::vector<std::string> key_sets = wanted_;
  for (size_t k = 0; k < in_.children_of.size() && k < parents_staged.size(); ++k) {
    const auto& parent = in_.children_of[k];
    if (parents_staged[k].empty()) continue;
    std::vector<std::string> values, matched;
    for (size_t c = 0; c < parent.columns.size(); ++c) {
      values.push_back("CAST(CAST(p." + pg::ident(parent.parent_columns[c]) + " AS text) AS " +
                       p.column(parent.columns[c])->stage_type + ")");
      matched.push_back("s." + pg::ident(parent.columns[c]));
    }
    std::vector<std::string> parts;  // (a source_select() may begin with WITH: each in its own subquery)
    for (const auto& select : parents_staged[k]) parts.push_back("SELECT * FROM (" + select + ") u");
    key_sets.push_back("SELECT " + pg::column_list(hash.key_names(), "s") + " FROM (" + src + ") s WHERE (" +
                       pg::join(matched, ", ") + ") IN (SELECT " + pg::join(values, ", ") + " FROM (" +
                       pg::join(parts, " UNION ALL ") + ") p)");
  }
  bool of_parents = key_sets.size() > wanted_.size();
  if (key_sets.empty()) return;
  // One read of the table's rows to fetch (the wanted keys are not staged, by construction).
  std::string condition = "(" + pg::join(fetch_matched(hash), ", ") + ") IN (" + pg::join(key_sets, " UNION ALL ") + ")";
  std::string select = keys_read(hash) ? source_select(p, source_, condition)
                                       : "SELECT * FROM (" + src + ") s WHERE " + condition;
  in_.staged.push_back(select);
  if (!of_parents) {
    chain.add(stage::CopyChain::Copy{
        copy_from(source_, select), in_.staging->copy_in(), {}, [this](int64_t rows, const std::vector<int64_t>&) {
          out_.rows_fetched += rows;
        }});
    return;
  }
  std::vector<std::string> ddl, names;
  for (const auto& c : p.columns) {
    ddl.push_back(pg::ident(c.name) + " " + c.stage_type);
    names.push_back(c.name);
  }
  std::string read =
      stage::create_work_table(target_, stage::work_table_name(in_.run_id, in_.index, "_c"), pg::join(ddl, ", "));
  created_.push_back(read);
  chain.add(stage::CopyChain::Copy{
      copy_from(source_, select),
      "COPY " + read + " (" + pg::column_list(names) + ") FROM STDIN (FORMAT binary)",
      {"SET LOCAL enable_nestloop = off",
       "INSERT INTO " + t.staging() + " SELECT * FROM " + read + " c WHERE NOT EXISTS (SELECT 1 FROM " + t.staging() +
           " s WHERE " + t.same_key("s", "c") + ")",
       "SET LOCAL enable_nestloop TO DEFAULT"},
      [this](int64_t, const std::vector<int64_t>& after) {
        if (after.size() > 1) out_.rows_fetched += after[1];
      }});
}

void Reconciliation::defer_finish() {
  const apply::TableSql& t = *in_.table;
  const plan::TablePlan& p = t.table();
  if ((in_.method == delta::Method::Cursor || in_.method == delta::Method::Logical) && !in_.previous_run_id.empty()) {
    TableHash hash = table_hash(in_);
    std::string keys = pg::column_list(hash.key_names());
    // The set-aside keys not read again stay set aside where they are
    // (stagesync.set_aside: nothing is written for them); the others are
    // released: read again in this run (judged again: set aside anew or
    // synced), or gone (their bucket differed and the source sent no such
    // key). Only the released keys are written, to the run's released table;
    // the run's record takes them out of the set. The pairs are joined: a
    // NOT EXISTS inside an expression would scan them once per row.
    std::string pairs_join, gone = "false";
    if (!pairs_.empty()) {
      pairs_join = " LEFT JOIN (SELECT DISTINCT " + keys + " FROM " + pairs_ + ") k ON " + t.same_key("k", "r");
      gone = hash.in(differing_, hash.hash("r")) + " AND k." + pg::ident(p.key.front()) + " IS NULL";
    } else if (!in_.listed.empty()) {
      gone = listed("r");  // a listed key not staged is not in the source's scope any more
    }
    int64_t* carried = in_.rejects_carried;
    if (by_text_) {
      // The set-aside rows of the keys staged (read again: judged again) or
      // listed and not staged (gone), found by their key's text: a key with a
      // NULL part leaves the set only when its row is read again (or listed).
      std::string listed_text;  // (a table may be read for its parents' changes alone: nothing listed)
      if (!in_.listed.empty()) {
        listed_text =
            " OR x.row_key IN (SELECT " + t.key_json("l") + " FROM (" + listed_select() + ") AS l(" + keys + "))";
      }
      target_.defer("WITH released AS (INSERT INTO " + stage::released_table(in_.run_id) +
                        " (table_name, row_key) SELECT $1, x.row_key FROM stagesync.set_aside x WHERE x.table_name = "
                        "$1 AND (x.row_key IN (SELECT " +
                        t.key_json("s") + " FROM " + t.staging() + " s)" + listed_text +
                        ") RETURNING 1) SELECT (SELECT count(*) FROM stagesync.set_aside x WHERE x.table_name = $1 "
                        "AND x.row_key LIKE '{%') - (SELECT count(*) FROM released)",
                    std::vector<pg::Param>{p.target_name}, [carried](pg::Result& r) {
                      if (carried) *carried = r.int64(0, 0);
                    });
      target_.defer("ANALYZE " + out_.deletions);
      return;
    }
    // Joins of up to every row: hashed, never a nested loop (the planner
    // misjudges freshly filled work tables; a nested loop here took minutes).
    set_local(target_, "enable_nestloop", "off");
    // (The staged keys joined too: an EXISTS under the OR would be probed once per set-aside row.)
    std::string staged_join =
        " LEFT JOIN (SELECT DISTINCT " + keys + " FROM " + t.staging() + ") st ON " + t.same_key("st", "r");
    target_.defer("WITH released AS (INSERT INTO " + stage::released_table(in_.run_id) +
                      " (table_name, row_key) SELECT $1, r.row_key FROM " + known_ + " r" + pairs_join + staged_join +
                      " WHERE st." + pg::ident(p.key.front()) + " IS NOT NULL OR (" + gone +
                      ") RETURNING 1) SELECT (SELECT count(*) FROM " + known_ + ") - (SELECT count(*) FROM released)",
                  std::vector<pg::Param>{p.target_name}, [carried](pg::Result& r) {
                    if (carried) *carried = r.int64(0, 0);
                  });
    unset_local(target_, "enable_nestloop");
  }
  target_.defer("ANALYZE " + out_.deletions);
}
}  // namespace stagesync::source::postgres
