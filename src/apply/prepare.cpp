#include "apply/prepare.h"

#include <functional>

namespace stagesync::apply {
namespace {

constexpr int kExamples = 5;

std::string examples(const pg::Result& r, int64_t total, const std::string& noun) {
  std::string out;
  for (int i = 0; i < r.rows(); ++i) out += "\n    " + r.text(i, 0);
  if (total > r.rows()) out += "\n    ... and " + std::to_string(total - r.rows()) + " more " + noun;
  return out;
}

// Moves staged rows matching `condition` (over alias s) into the rejects
// table; `moved` gets how many when the pipeline runs.
void set_aside(pg::Pipeline& p, const TableSql& t, const std::string& rejects, const std::string& condition,
               const std::string& column_expr, const std::string& reason_expr, pg::Params& params,
               std::function<void(int64_t)> moved) {
  std::string table_param = params.add(t.table().target_name);
  // Incremental runs stage only some rows: a set-aside row's owned target copy
  // (synced earlier) must go explicitly, as a full run's would by not being staged.
  std::string keys, also_delete;
  if (t.incremental()) {
    std::vector<std::string> not_null;
    for (const auto& k : t.table().key) not_null.push_back(pg::ident(k) + " IS NOT NULL");
    keys = pg::column_list(t.table().key, "s") + ", ";
    also_delete = ", deleted AS (INSERT INTO " + t.deletions() + " SELECT " + pg::column_list(t.table().key) +
                  " FROM gone WHERE " + pg::join(not_null, " AND ") + ")";
  }
  p.add("WITH gone AS (DELETE FROM " + t.staging() + " s WHERE " + condition + " RETURNING " + keys + t.key_json("s") +
            " AS row_key, " + column_expr + " AS column_name, " + reason_expr + " AS reason)" + also_delete + " " +
            "INSERT INTO " + rejects + " (table_name, row_key, column_name, reason) " + "SELECT " + table_param +
            ", row_key, column_name, reason FROM gone",
        params, [moved = std::move(moved)](pg::Result& r) { moved(r.affected()); });
}

// Refuses the run when `select` (examples, then the total count over the
// window, then optionally a second total) returns rows: one statement, counted
// and exemplified at once.
void refuse_if_any(pg::Pipeline& p, const std::string& select, const pg::Params& params,
                   std::function<std::string(const pg::Result&)> message, const std::string& table) {
  p.add(select, params, [message = std::move(message), table](pg::Result& r) {
    if (r.rows() == 0) return;
    throw DataRefused(table, message(r));
  });
}

void reject_null_keys(pg::Pipeline& p, const TableSql& t, const std::string& rejects, TableCounts& counts) {
  std::vector<std::string> any_null, first_null;
  for (const auto& k : t.table().key) {
    any_null.push_back("s." + pg::ident(k) + " IS NULL");
    first_null.push_back("WHEN s." + pg::ident(k) + " IS NULL THEN " + pg::text_literal(k));
  }
  pg::Params params;
  std::string column = "CASE " + pg::join(first_null, " ") + " END";
  set_aside(p, t, rejects, pg::join(any_null, " OR "), column, "'NULL in a key column: the row cannot be matched'",
            params, [&counts](int64_t n) { counts.rejected += n; });
}

void handle_duplicates(pg::Pipeline& p, const TableSql& t, TableCounts& counts) {
  const plan::TablePlan& tp = t.table();
  std::string key = pg::column_list(tp.key);
  std::string dup_keys = "SELECT " + key + " FROM " + t.staging() + " GROUP BY " + key + " HAVING count(*) > 1";
  if (!tp.duplicates.keep_newest) {
    refuse_if_any(
        p,
        "SELECT d.what, count(*) OVER (), sum(d.n) OVER () FROM (SELECT " + t.key_json("s") +
            " || ' appears ' || count(*) || ' times' AS what, count(*) AS n FROM " + t.staging() + " s GROUP BY " +
            key + " HAVING count(*) > 1) d ORDER BY d.n DESC, 1 LIMIT " + std::to_string(kExamples),
        pg::Params{},
        [](const pg::Result& r) {
          int64_t keys = r.int64(0, 1);
          return std::to_string(keys) + " key value(s) occur more than once in the source (" + r.text(0, 2) +
                 " rows); nothing was applied. " +
                 "Fix the source or set 'duplicates: { keep: newest, by: <column> }':" + examples(r, keys, "keys");
        },
        tp.target_name);
    return;
  }
  // Newest by `by` (NULL counts as oldest); ties broken by the row's text, so
  // the same data always keeps the same row. The same ranking of the
  // duplicated keys' rows tells whether two of a key hold equal `by` values as
  // the target stores them (NULLs equal): the watermark's `ties` after a full
  // read, which needs no scan of its own (only duplicated keys can tie).
  const plan::StagedColumn& by_column = *tp.column(tp.duplicates.by);
  std::string by = "s." + pg::ident(by_column.name);
  std::string keys = pg::column_list(tp.key, "s");
  p.add("WITH d AS (SELECT s.ctid AS id, row_number() OVER (PARTITION BY " + keys + " ORDER BY " + by +
            " DESC NULLS LAST, s::text DESC) AS rn, count(*) OVER (PARTITION BY " + keys + ", CAST(" + by + " AS " +
            by_column.target.type + ")) AS same FROM " + t.staging() + " s WHERE (" + keys + ") IN (" + dup_keys +
            ")), x AS (DELETE FROM " + t.staging() +
            " x USING d WHERE x.ctid = d.id AND d.rn > 1 RETURNING 1) SELECT (SELECT count(*) FROM x), "
            "EXISTS (SELECT 1 FROM d WHERE d.same > 1)",
        [&counts](pg::Result& r) {
          counts.duplicates_dropped += r.int64(0, 0);
          counts.newest_ties = r.boolean(0, 1) ? 1 : 0;
        });
}

void refuse_unstorable(pg::Pipeline& p, const TableSql& t) {
  std::vector<std::string> whens, conds;
  for (const auto& c : t.table().columns) {
    std::string v = "s." + pg::ident(c.name);
    if (c.target.not_null) {
      conds.push_back(v + " IS NULL");
      whens.push_back("WHEN " + v + " IS NULL THEN " +
                      pg::text_literal("column " + c.name + ": NULL, but the target column is NOT NULL"));
    }
    // A source column whose own limit fits the target's cannot hold a value too long.
    bool fits = c.source_max_length >= 0 && c.source_max_length <= c.target.max_length;
    if (c.target.max_length >= 0 && !fits) {
      std::string len = "pg_catalog.char_length(pg_catalog.rtrim(" + v + "::text, ' '))";
      std::string n = std::to_string(c.target.max_length);
      conds.push_back(len + " > " + n);
      whens.push_back("WHEN " + len + " > " + n + " THEN " + pg::text_literal("column " + c.name + ": value of ") +
                      " || " + len + " || " +
                      pg::text_literal(" characters, the target column " + c.target.type + " holds " + n));
    }
  }
  if (conds.empty()) return;
  std::string where = pg::join(conds, " OR ");
  std::string name = t.table().target.display_name();
  refuse_if_any(
      p,
      "SELECT 'key ' || " + t.key_json("s") + " || ': ' || CASE " + pg::join(whens, " ") +
          " END, count(*) OVER () FROM " + t.staging() + " s WHERE " + where + " LIMIT " + std::to_string(kExamples),
      pg::Params{},
      [name](const pg::Result& r) {
        int64_t n = r.int64(0, 1);
        return std::to_string(n) + " source row(s) hold values the target table " + name +
               " cannot store; nothing was applied:" + examples(r, n, "rows");
      },
      t.table().target_name);
}

void reject_collisions(pg::Pipeline& pipe, const TableSql& t, const std::string& rejects, TableCounts& counts) {
  const plan::TablePlan& p = t.table();
  if (!p.owner && p.scope.empty()) return;  // every row is owned: nothing to collide with
  pg::Params params;
  std::string owned = t.owned("f", params);
  std::string describe =
      p.owner ? pg::text_literal("key is taken by a target row the sync does not own (" + p.owner->first + " = ") +
                    " || coalesce((SELECT f." + pg::ident(p.owner->first) + "::text FROM " + t.target() + " f WHERE " +
                    t.same_key("f", "s") + " LIMIT 1), 'NULL') || ')'"
              : "'key is taken by a target row outside the scope'";
  set_aside(
      pipe, t, rejects,
      "EXISTS (SELECT 1 FROM " + t.target() + " f WHERE " + t.same_key("f", "s") + " AND " + owned + " IS NOT TRUE)",
      "NULL", describe, params, [&counts](int64_t n) {
        counts.rejected += n;
        counts.collisions += n;
      });
}

void judge_reference(pg::Pipeline& p, const TableSql& t, const std::string& rejects, const plan::ResolvedReference& ref,
                     const plan::TablePlan& parent, const TableSql* parent_staged, TableCounts& counts) {
  pg::Params params;
  std::vector<std::string> not_null, in_parent_stage, in_parent_target;
  for (size_t i = 0; i < ref.columns.size(); ++i) {
    std::string child = "s." + pg::ident(ref.columns[i]);
    not_null.push_back(child + " IS NOT NULL");
    in_parent_stage.push_back("ps." + pg::ident(ref.parent_columns[i]) + " = " + child);
    in_parent_target.push_back("pt." + pg::ident(ref.parent_columns[i]) + " = " + child);
  }
  std::string orphan = pg::join(not_null, " AND ");
  if (parent_staged) {
    orphan += " AND NOT EXISTS (SELECT 1 FROM " + parent_staged->staging() + " ps WHERE " +
              pg::join(in_parent_stage, " AND ") + ") AND " +
              parent_staged->no_surviving_row("pt", pg::join(in_parent_target, " AND "), params);
  } else {
    orphan += " AND NOT EXISTS (SELECT 1 FROM " + parent.target.qualified_name() + " pt WHERE " +
              pg::join(in_parent_target, " AND ") + ")";
  }
  std::string cols = pg::join(ref.columns, ", ");
  std::string reason = pg::text_literal("no row in " + parent.target_name + " (" + pg::join(ref.parent_columns, ", ") +
                                        ") for (" + cols + ") = ") +
                       " || ROW(" + pg::column_list(ref.columns, "s") + ")::text";
  switch (ref.policy) {
    case config::OrphanPolicy::Skip:
      set_aside(p, t, rejects, orphan, pg::text_literal(cols), reason, params,
                [&counts](int64_t n) { counts.rejected += n; });
      return;
    case config::OrphanPolicy::Keep:
      p.add("SELECT count(*) FROM " + t.staging() + " s WHERE " + orphan, params,
            [&counts](pg::Result& r) { counts.orphans_kept += r.int64(0, 0); });
      return;
    case config::OrphanPolicy::Fail: {
      std::string parent_name = parent.target_name;
      refuse_if_any(
          p,
          "SELECT 'key ' || " + t.key_json("s") + " || ': ' || " + reason + ", count(*) OVER () FROM " + t.staging() +
              " s WHERE " + orphan + " LIMIT " + std::to_string(kExamples),
          params,
          [parent_name](const pg::Result& r) {
            int64_t n = r.int64(0, 1);
            return std::to_string(n) + " row(s) reference a missing " + parent_name +
                   " (on_orphan: fail); nothing was applied:" + examples(r, n, "rows");
          },
          t.table().target_name);
      return;
    }
  }
}

// The staged rows of `t` that would violate target foreign key `fk`: every
// referencing column non-NULL (MATCH SIMPLE) and no parent row as the parent
// will be after this run (as judge_reference()). Empty when it cannot be
// judged here: a column of either side not staged (the server still checks).
std::string violating(const TableSql& t, const plan::TargetForeignKey& fk, const TableSql* parent_staged,
                      pg::Params& params) {
  std::vector<std::string> not_null, in_parent_stage, in_parent_target;
  for (size_t i = 0; i < fk.columns.size(); ++i) {
    const plan::StagedColumn* c = t.table().column(fk.columns[i]);
    if (!c) return "";
    std::string child = t.insert_value("s", *c);
    not_null.push_back("s." + pg::ident(c->name) + " IS NOT NULL");
    in_parent_target.push_back("pt." + pg::ident(fk.parent_columns[i]) + " = " + child);
    if (parent_staged) {
      const plan::StagedColumn* pc = parent_staged->table().column(fk.parent_columns[i]);
      if (!pc) return "";
      in_parent_stage.push_back(parent_staged->insert_value("ps", *pc) + " = " + child);
    }
  }
  std::string match = pg::join(in_parent_target, " AND ");
  std::string orphan = pg::join(not_null, " AND ");
  if (!parent_staged) return orphan + " AND NOT EXISTS (SELECT 1 FROM " + fk.parent_qualified() + " pt WHERE " + match + ")";
  return orphan + " AND " + parent_staged->no_surviving_row("pt", match, params) + " AND NOT EXISTS (SELECT 1 FROM " +
         parent_staged->staging() + " ps WHERE " + pg::join(in_parent_stage, " AND ") + ")";
}

}  // namespace

void judge_foreign_keys(pg::Pipeline& p, const TableSql& t, const plan::SyncPlan& plan,
                        const std::vector<const TableSql*>& staged) {
  const plan::TablePlan& tp = t.table();
  for (const auto& fk : tp.foreign_keys) {
    if (fk.covered) continue;
    const TableSql* parent_staged = fk.parent >= 0 ? staged.at(static_cast<size_t>(fk.parent)) : nullptr;
    pg::Params params;
    std::string orphan = violating(t, fk, parent_staged, params);
    if (orphan.empty()) continue;
    std::string cols = pg::join(fk.columns, ", ");
    std::string what = "'key ' || " + t.key_json("s") + " || ': ' || " + pg::text_literal("(" + cols + ") = ") +
                       " || ROW(" + pg::column_list(fk.columns, "s") + ")::text || " +
                       pg::text_literal(" has no row in " + fk.parent_display());
    std::string message = "target foreign key " + fk.constraint + " (" + cols + ") -> " + fk.parent_display() + " (" +
                          pg::join(fk.parent_columns, ", ") + "), which no 'references:' entry covers: ";
    std::string hint = fk.suggested_reference(plan, tp.name);
    refuse_if_any(
        p,
        "SELECT " + what + ", count(*) OVER () FROM " + t.staging() + " s WHERE " + orphan + " LIMIT " +
            std::to_string(kExamples),
        params,
        [message, hint](const pg::Result& r) {
          int64_t n = r.int64(0, 1);
          return message + std::to_string(n) + " source row(s) would violate it; nothing was applied:" +
                 examples(r, n, "rows") + "\n  To set such rows aside instead (as rejects), " + hint;
        },
        tp.target_name);
  }
}

void prepare_table(pg::Pipeline& p, const TableSql& t, const std::string& rejects,
                   const std::vector<const plan::TablePlan*>& plans, const std::vector<const TableSql*>& staged,
                   TableCounts& counts) {
  const plan::TablePlan& tp = t.table();
  if (tp.keyed()) {
    reject_null_keys(p, t, rejects, counts);
    handle_duplicates(p, t, counts);
  }
  refuse_unstorable(p, t);
  if (tp.keyed()) reject_collisions(p, t, rejects, counts);
  for (const auto& ref : tp.references) {
    judge_reference(p, t, rejects, ref, *plans[ref.parent], staged[ref.parent], counts);
  }
}

}  // namespace stagesync::apply
