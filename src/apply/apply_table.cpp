#include "apply/apply_table.h"

namespace stagesync::apply {
namespace {

// Each clause below defines one set of rows; the apply executes it, the plan
// counts it, so the two cannot disagree.

// Condition on target alias t: the owned rows a merge deletes (no longer in the
// source). Incremental runs: the keys source::postgres::Reconciliation listed. Keyed tables by key;
// keyless tables as multisets (a row value held n times in the target and m
// times in staging loses n - m copies).
std::string vanished(const TableSql& t, pg::Params& params) {
  std::string owned = t.owned("t", params);
  if (t.incremental()) {
    return owned + " AND EXISTS (SELECT 1 FROM " + t.deletions() + " d WHERE " + t.same_key("d", "t") + ")";
  }
  if (t.table().keyed()) {
    return owned + " AND NOT EXISTS (SELECT 1 FROM " + t.staging() + " s WHERE " + t.same_key("s", "t") + ")";
  }
  std::string tt = t.target_tuple("t", params, true) + "::text";
  std::string st = t.staged_tuple("s", params, true) + "::text";
  return "t.ctid IN (SELECT x.id FROM (SELECT t.ctid AS id, " + tt + " AS v, row_number() OVER (PARTITION BY " + tt +
         ") AS n FROM " + t.target() + " t WHERE " + owned + ") x LEFT JOIN (SELECT " + st +
         " AS v, count(*) AS n FROM " + t.staging() + " s GROUP BY 1) y ON y.v = x.v WHERE x.n > coalesce(y.n, 0))";
}

// Condition joining target t and staging s: owned rows whose compared values
// differ (keyed merge only). Empty when nothing is compared.
std::string changed(const TableSql& t, pg::Params& params) {
  if (!t.has_compared_values()) return "";
  std::string owned = t.owned("t", params);
  return t.same_key("s", "t") + " AND " + owned + " AND " + t.target_tuple("t", params, false) + " IS DISTINCT FROM " +
         t.staged_tuple("s", params, false);
}

// FROM ... WHERE over staging alias s: the staged rows a merge inserts.
std::string new_rows(const TableSql& t, pg::Params& params) {
  if (t.table().keyed()) {
    return "FROM " + t.staging() + " s WHERE NOT EXISTS (SELECT 1 FROM " + t.target() + " t WHERE " +
           t.same_key("t", "s") + ")";
  }
  std::string owned = t.owned("t", params);
  std::string tt = t.target_tuple("t", params, true) + "::text";
  std::string st = t.staged_tuple("s", params, true) + "::text";
  return "FROM (SELECT s.*, " + st + " AS ss_v, row_number() OVER (PARTITION BY " + st + ") AS ss_n FROM " +
         t.staging() + " s) s LEFT JOIN (SELECT " + tt + " AS v, count(*) AS n FROM " + t.target() + " t WHERE " +
         owned + " GROUP BY 1) y ON y.v = s.ss_v WHERE s.ss_n > coalesce(y.n, 0)";
}

void count_into(pg::Pipeline& p, const std::string& from_where, const pg::Params& params, int64_t& out) {
  p.add("SELECT count(*) " + from_where, params, [&out](pg::Result& r) { out = r.int64(0, 0); });
}

void insert_rows(pg::Pipeline& p, const TableSql& t, const std::string& from_where, pg::Params& params,
                 TableCounts& counts) {
  p.add("INSERT INTO " + t.target() + " (" + pg::column_list(t.insert_columns()) + ") SELECT " +
            t.insert_select(params) + " " + from_where,
        params, [&counts](pg::Result& r) { counts.inserted += r.affected(); });
}

void update_changed(pg::Pipeline& p, const TableSql& t, TableCounts& counts) {
  pg::Params params;
  std::vector<std::string> sets;
  for (const auto& c : t.table().columns)
    if (!t.is_key(c)) sets.push_back(pg::ident(c.name) + " = " + t.insert_value("s", c));
  for (const auto& kv : t.table().constants) sets.push_back(pg::ident(kv.first) + " = " + t.constant(kv, params));
  std::string cond = changed(t, params);
  if (sets.empty() || cond.empty()) return;
  p.add("UPDATE " + t.target() + " t SET " + pg::join(sets, ", ") + " FROM " + t.staging() + " s WHERE " + cond, params,
        [&counts](pg::Result& r) { counts.updated += r.affected(); });
}

}  // namespace

std::string to_string(Strategy s) {
  switch (s) {
    case Strategy::Merge:
      return "merge";
    case Strategy::Swap:
      return "swap";
    case Strategy::TruncateFirst:
      return "truncate-first";
  }
  return "merge";
}

std::optional<Strategy> parse_strategy(const std::string& s) {
  if (s == "merge") return Strategy::Merge;
  if (s == "swap") return Strategy::Swap;
  if (s == "truncate-first") return Strategy::TruncateFirst;
  return std::nullopt;
}

std::string cascades_sql() {
  // $1: a target table. Foreign keys of other tables onto it whose ON DELETE
  // action would carry a delete into their rows.
  return "SELECT c.conname, c.conrelid::regclass::text, "
         "  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(n, "
         "ord) "
         "   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n), "
         "  (SELECT string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(c.confkey) WITH "
         "ORDINALITY k(n, ord) "
         "   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n) "
         "FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND c.confrelid = pg_catalog.to_regclass($1) "
         "AND c.conrelid <> c.confrelid AND c.confdeltype IN ('c', 'n', 'd')";
}

void find_cascades(pg::Pipeline& p, const TableSql& t, std::vector<Cascade>& out) {
  p.add(cascades_sql(), std::vector<pg::Param>{t.target()}, [&out](pg::Result& r) {
    out.clear();
    for (int i = 0; i < r.rows(); ++i) out.push_back(Cascade{r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3)});
  });
}

// Swap deletes every owned row. Foreign keys from other tables make that
// impossible (rows referencing them) or dangerous (ON DELETE CASCADE / SET NULL
// would change rows the sync does not own): refuse and point to merge.
void refuse_cascades(pg::Pipeline& p, const TableSql& t, Strategy strategy, const std::vector<Cascade>& fks) {
  if (fks.empty()) return;
  if (strategy != Strategy::Merge) {
    throw DataRefused(t.table().target_name, "swap deletes every owned row and re-inserts it; foreign key " +
                                                 fks.front().constraint + " on " + fks.front().child +
                                                 " would cascade that delete to rows the sync does not own; nothing "
                                                 "was changed: use --strategy merge");
  }
  // A merge deletes owned rows that vanished from the source. A foreign key
  // elsewhere with ON DELETE CASCADE / SET NULL / SET DEFAULT would carry that
  // delete into rows still referencing them (children the sync does not own,
  // or that are not part of this run; owned children that vanished too were
  // deleted first). Refuse instead of letting the server change those rows.
  for (const auto& fk : fks) {
    pg::Params params;
    std::string where = vanished(t, params);
    std::string table = t.table().target_name;
    p.add("SELECT count(*) FROM " + fk.child + " x WHERE (" + fk.child_columns + ") IN (SELECT " + fk.parent_columns +
              " FROM " + t.target() + " t WHERE " + where + ")",
          params, [fk, table](pg::Result& r) {
            int64_t n = r.int64(0, 0);
            if (n == 0) return;
            throw DataRefused(table, "owned rows that vanished from the source are still referenced by " +
                                         std::to_string(n) + " row(s) of " + fk.child + " through foreign key " +
                                         fk.constraint +
                                         ", which would cascade the delete into them; nothing was applied. Remove or "
                                         "re-parent those rows (or sync their table in the same run if the sync owns "
                                         "them)");
          });
  }
}

void delete_vanished(pg::Pipeline& p, const TableSql& t, Strategy strategy, TableCounts& counts) {
  pg::Params params;
  std::string where = strategy == Strategy::Merge ? vanished(t, params) : t.owned("t", params);
  p.add("DELETE FROM " + t.target() + " t WHERE " + where, params,
        [&counts](pg::Result& r) { counts.deleted += r.affected(); });
}

void upsert(pg::Pipeline& p, const TableSql& t, Strategy strategy, TableCounts& counts) {
  pg::Params params;
  if (strategy != Strategy::Merge) {
    insert_rows(p, t, "FROM " + t.staging() + " s", params, counts);
    return;
  }
  if (t.table().keyed()) update_changed(p, t, counts);
  std::string from = new_rows(t, params);
  insert_rows(p, t, from, params, counts);
}

void insert_in_batches(pg::Connection& target, const TableSql& t, int64_t batch_rows, TableCounts& counts) {
  while (true) {
    pg::Params params;
    std::string select = t.insert_select(params);
    pg::Result r =
        target.exec("WITH s AS (DELETE FROM " + t.staging() + " WHERE ctid = ANY (ARRAY(SELECT ctid FROM " +
                        t.staging() + " LIMIT " + std::to_string(batch_rows) + ")) RETURNING *) INSERT INTO " +
                        t.target() + " (" + pg::column_list(t.insert_columns()) + ") SELECT " + select + " FROM s",
                    params);
    if (r.affected() == 0) return;
    counts.inserted += r.affected();
  }
}

void predict(pg::Pipeline& p, const TableSql& t, Strategy strategy, TableCounts& c) {
  if (strategy != Strategy::Merge) {
    count_owned(p, t, c.deleted);
    p.add("SELECT count(*) FROM " + t.staging(), [&c](pg::Result& r) { c.inserted = r.int64(0, 0); });
    return;
  }
  count_vanished(p, t, c.deleted);
  if (t.table().keyed()) {
    pg::Params params;
    std::string cond = changed(t, params);
    if (!cond.empty())
      count_into(p, "FROM " + t.target() + " t JOIN " + t.staging() + " s ON " + cond, params, c.updated);
  }
  pg::Params params;
  std::string from = new_rows(t, params);
  count_into(p, from, params, c.inserted);
}

void count_vanished(pg::Pipeline& p, const TableSql& t, int64_t& out) {
  pg::Params params;
  std::string where = vanished(t, params);
  count_into(p, "FROM " + t.target() + " t WHERE " + where, params, out);
}

void count_owned(pg::Pipeline& p, const TableSql& t, int64_t& out) {
  pg::Params params;
  std::string owned = t.owned("t", params);
  count_into(p, "FROM " + t.target() + " t WHERE " + owned, params, out);
}

void count_owned_and_vanished(pg::Pipeline& p, const TableSql& t, int64_t& owned, int64_t& vanishing,
                              const std::function<std::string(const std::string&)>& owned_needed, bool* exact) {
  if (exact) *exact = true;
  if (owned_needed && t.table().keyed() && t.incremental()) {
    // The vanishing rows first, then the owned rows up to what that count
    // needs (a LIMIT takes no outer reference: the cap is a subquery of v).
    pg::Params params;
    std::string gone = vanished(t, params);
    std::string own = t.owned("t", params);
    p.add("WITH v AS (SELECT x.n, " + owned_needed("x.n") + " AS cap FROM (SELECT count(*) AS n FROM " + t.target() +
              " t WHERE " + gone + ") x) SELECT (SELECT count(*) FROM (SELECT 1 FROM " + t.target() + " t WHERE " +
              own + " LIMIT (SELECT cap FROM v)) o), v.n, v.cap FROM v",
          params, [&owned, &vanishing, exact](pg::Result& r) {
            owned = r.int64(0, 0);
            vanishing = r.int64(0, 1);
            if (exact) *exact = r.is_null(0, 2) || owned < r.int64(0, 2);
          });
    return;
  }
  if (!t.table().keyed() || t.incremental()) {
    count_owned(p, t, owned);
    count_vanished(p, t, vanishing);
    return;
  }
  // Keyed full run: one pass. Staged keys are unique and not NULL once
  // prepared, so the outer join matches each owned row at most once, and an
  // unmatched one is exactly a row the merge deletes (vanished()).
  pg::Params params;
  std::string own = t.owned("t", params);
  std::string first_key = "s." + pg::ident(t.table().key.front());
  p.add("SELECT count(*), count(*) FILTER (WHERE " + first_key + " IS NULL) FROM " + t.target() + " t LEFT JOIN " +
            t.staging() + " s ON " + t.same_key("s", "t") + " WHERE " + own,
        params, [&owned, &vanishing](pg::Result& r) {
          owned = r.int64(0, 0);
          vanishing = r.int64(0, 1);
        });
}

void count_foreign(pg::Pipeline& p, const TableSql& t, int64_t& out) {
  pg::Params params;
  std::string own = t.owned("t", params);
  count_into(p, "FROM " + t.target() + " t WHERE " + own + " IS NOT TRUE", params, out);
}

}  // namespace stagesync::apply
