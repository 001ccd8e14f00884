#include "apply/apply_table.h"

namespace stagesync::apply {
namespace {

// Each clause below defines one set of rows; the apply executes it, the plan
// counts it, so the two cannot disagree.

// Condition on target alias t: the owned rows a merge deletes (no longer in the
// source). Incremental runs: the keys reconcile() listed. Keyed tables by key;
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
  return t.same_key("s", "t") + " AND " + owned + " AND " + t.target_tuple("t", params, false) +
         " IS DISTINCT FROM " + t.staged_tuple("s", params, false);
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

int64_t count_of(pg::Connection& target, const std::string& from_where, const pg::Params& params) {
  return target.exec("SELECT count(*) " + from_where, params).int64(0, 0);
}

void insert_rows(pg::Connection& target, const TableSql& t, const std::string& from_where, pg::Params& params,
                 TableCounts& counts) {
  pg::Result r = target.exec("INSERT INTO " + t.target() + " (" + pg::column_list(t.insert_columns()) + ") SELECT " +
                                 t.insert_select(params) + " " + from_where,
                             params);
  counts.inserted += r.affected();
}

void update_changed(pg::Connection& target, const TableSql& t, TableCounts& counts) {
  pg::Params params;
  std::vector<std::string> sets;
  for (const auto& c : t.table().columns)
    if (!t.is_key(c)) sets.push_back(pg::ident(c.name) + " = " + t.insert_value("s", c));
  for (const auto& kv : t.table().constants) sets.push_back(pg::ident(kv.first) + " = " + t.constant(kv, params));
  std::string cond = changed(t, params);
  if (sets.empty() || cond.empty()) return;
  pg::Result r = target.exec(
      "UPDATE " + t.target() + " t SET " + pg::join(sets, ", ") + " FROM " + t.staging() + " s WHERE " + cond, params);
  counts.updated += r.affected();
}

}  // namespace

std::string to_string(Strategy s) {
  switch (s) {
    case Strategy::Merge: return "merge";
    case Strategy::Swap: return "swap";
    case Strategy::TruncateFirst: return "truncate-first";
  }
  return "merge";
}

std::optional<Strategy> parse_strategy(const std::string& s) {
  if (s == "merge") return Strategy::Merge;
  if (s == "swap") return Strategy::Swap;
  if (s == "truncate-first") return Strategy::TruncateFirst;
  return std::nullopt;
}

namespace {

// Swap deletes every owned row. Foreign keys from other tables make that
// impossible (rows referencing them) or dangerous (ON DELETE CASCADE / SET NULL
// would change rows the sync does not own): refuse and point to merge.
void delete_all_owned(pg::Connection& target, const TableSql& t, TableCounts& counts) {
  pg::Result fk = target.exec(
      "SELECT conrelid::regclass::text, conname FROM pg_catalog.pg_constraint WHERE contype = 'f' "
      "AND confrelid = pg_catalog.to_regclass($1) AND conrelid <> confrelid AND confdeltype IN ('c', 'n', 'd') LIMIT 1",
      std::vector<pg::Param>{t.target()});
  std::string why = "swap deletes every owned row of " + t.table().target_name + " and re-inserts it; ";
  if (fk.rows()) {
    throw DataRefused(t.table().target_name, why + "foreign key " + fk.text(0, 1) + " on " + fk.text(0, 0) +
                                                 " would cascade that delete to rows the sync does not own; nothing "
                                                 "was changed: use --strategy merge");
  }
  pg::Params params;
  try {
    pg::Result r = target.exec("DELETE FROM " + t.target() + " t WHERE " + t.owned("t", params), params);
    counts.deleted += r.affected();
  } catch (const pg::Error& e) {
    if (e.sqlstate() != "23503") throw;
    throw DataRefused(t.table().target_name, why + "rows of other tables reference them (" +
                                                 e.diagnostics().constraint +
                                                 "), so the run stopped and nothing was changed: use --strategy merge");
  }
}

}  // namespace

namespace {

// A merge deletes owned rows that vanished from the source. A foreign key
// elsewhere with ON DELETE CASCADE / SET NULL / SET DEFAULT would carry that
// delete into rows still referencing them (children the sync does not own,
// or that are not part of this run; owned children that vanished too were
// deleted first). Refuse instead of letting the server change those rows.
void refuse_cascades(pg::Connection& target, const TableSql& t) {
  pg::Result fks = target.exec(
      "SELECT c.conname, c.conrelid::regclass::text, "
      "  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(n, ord) "
      "   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n), "
      "  (SELECT string_agg('t.' || quote_ident(a.attname), ', ' ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY k(n, ord) "
      "   JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n) "
      "FROM pg_catalog.pg_constraint c WHERE c.contype = 'f' AND c.confrelid = pg_catalog.to_regclass($1) "
      "AND c.conrelid <> c.confrelid AND c.confdeltype IN ('c', 'n', 'd')",
      std::vector<pg::Param>{t.target()});
  for (int i = 0; i < fks.rows(); ++i) {
    pg::Params params;
    std::string where = vanished(t, params);
    int64_t n = count_of(target, "FROM " + fks.text(i, 1) + " x WHERE (" + fks.text(i, 2) + ") IN (SELECT " +
                                     fks.text(i, 3) + " FROM " + t.target() + " t WHERE " + where + ")",
                         params);
    if (n > 0) {
      throw DataRefused(t.table().target_name,
                        "owned rows that vanished from the source are still referenced by " + std::to_string(n) +
                            " row(s) of " + fks.text(i, 1) + " through foreign key " + fks.text(i, 0) +
                            ", which would cascade the delete into them; nothing was applied. Remove or re-parent "
                            "those rows (or sync their table in the same run if the sync owns them)");
    }
  }
}

}  // namespace

void delete_vanished(pg::Connection& target, const TableSql& t, Strategy strategy, TableCounts& counts) {
  if (strategy != Strategy::Merge) {
    delete_all_owned(target, t, counts);
    return;
  }
  refuse_cascades(target, t);
  pg::Params params;
  std::string where = vanished(t, params);
  counts.deleted += target.exec("DELETE FROM " + t.target() + " t WHERE " + where, params).affected();
}

void upsert(pg::Connection& target, const TableSql& t, Strategy strategy, TableCounts& counts) {
  pg::Params params;
  if (strategy != Strategy::Merge) {
    insert_rows(target, t, "FROM " + t.staging() + " s", params, counts);
    return;
  }
  if (t.table().keyed()) update_changed(target, t, counts);
  std::string from = new_rows(t, params);
  insert_rows(target, t, from, params, counts);
}

void insert_in_batches(pg::Connection& target, const TableSql& t, int64_t batch_rows, TableCounts& counts) {
  while (true) {
    pg::Params params;
    std::string select = t.insert_select(params);
    pg::Result r = target.exec(
        "WITH s AS (DELETE FROM " + t.staging() + " WHERE ctid = ANY (ARRAY(SELECT ctid FROM " + t.staging() +
            " LIMIT " + std::to_string(batch_rows) + ")) RETURNING *) INSERT INTO " + t.target() + " (" +
            pg::column_list(t.insert_columns()) + ") SELECT " + select + " FROM s",
        params);
    if (r.affected() == 0) return;
    counts.inserted += r.affected();
  }
}

TableCounts predict(pg::Connection& target, const TableSql& t, Strategy strategy) {
  TableCounts c;
  if (strategy != Strategy::Merge) {
    c.deleted = count_owned(target, t);
    c.inserted = target.exec("SELECT count(*) FROM " + t.staging()).int64(0, 0);
    return c;
  }
  c.deleted = count_vanished(target, t);
  if (t.table().keyed()) {
    pg::Params params;
    std::string cond = changed(t, params);
    if (!cond.empty()) c.updated = count_of(target, "FROM " + t.target() + " t JOIN " + t.staging() + " s ON " + cond, params);
  }
  pg::Params params;
  std::string from = new_rows(t, params);
  c.inserted = count_of(target, from, params);
  return c;
}

int64_t count_vanished(pg::Connection& target, const TableSql& t) {
  pg::Params params;
  std::string where = vanished(t, params);
  return count_of(target, "FROM " + t.target() + " t WHERE " + where, params);
}

int64_t count_owned(pg::Connection& target, const TableSql& t) {
  pg::Params params;
  return target.exec("SELECT count(*) FROM " + t.target() + " t WHERE " + t.owned("t", params), params).int64(0, 0);
}

int64_t count_foreign(pg::Connection& target, const TableSql& t) {
  pg::Params params;
  pg::Result r = target.exec("SELECT count(*) FROM " + t.target() + " t WHERE " + t.owned("t", params) + " IS NOT TRUE", params);
  return r.int64(0, 0);
}

}  // namespace stagesync::apply
