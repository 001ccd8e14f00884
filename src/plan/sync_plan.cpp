#include "plan/sync_plan.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "catalog/table_facts.h"
#include "pg/pipeline.h"
#include "pg/sql.h"
#include "source/source.h"

namespace stagesync::plan {
namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

bool has_key(const std::vector<ColumnValue>& v, const std::string& name) {
  return std::any_of(v.begin(), v.end(), [&](const ColumnValue& p) { return p.first == name; });
}

// Whether values of `from` can be stored in a column of `to` without an
// explicit conversion the user did not ask for: the same type, an implicit or
// assignment cast on the target server, or a string-like target type.
// prefetch() reads the answer for every type of the target tables in the same
// round trip as their columns; a pair it does not cover is asked of the server.
class TypeCompatibility {
 public:
  explicit TypeCompatibility(pg::Connection& target) : target_(target) {}

  // $1: the target tables' names (catalog::table_names_param).
  static std::string prefetch_sql() {
    return "SELECT tn.nspname, ty.typname, ty.typcategory::text, sn.nspname, st.typname "
           "FROM (SELECT DISTINCT a.atttypid FROM unnest($1::text[]) n(name) JOIN pg_catalog.pg_attribute a "
           "      ON a.attrelid = pg_catalog.to_regclass(n.name) AND a.attnum > 0 AND NOT a.attisdropped) u "
           "JOIN pg_catalog.pg_type ty ON ty.oid = u.atttypid "
           "JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace "
           "LEFT JOIN pg_catalog.pg_cast k ON k.casttarget = ty.oid AND k.castcontext IN ('i', 'a') "
           "LEFT JOIN pg_catalog.pg_type st ON st.oid = k.castsource "
           "LEFT JOIN pg_catalog.pg_namespace sn ON sn.oid = st.typnamespace";
  }
  void prefetched(const pg::Result& r) {
    for (int i = 0; i < r.rows(); ++i) {
      Target& t = known_[pg::qualified(r.text(i, 0), r.text(i, 1))];
      t.string_like = r.text(i, 2) == "S";
      if (!r.is_null(i, 3)) t.cast_from.insert(pg::qualified(r.text(i, 3), r.text(i, 4)));
    }
  }

  bool compatible(const std::string& from, const std::string& to) {
    auto k = known_.find(to);
    if (k != known_.end()) return from == to || k->second.string_like || k->second.cast_from.count(from) > 0;
    auto key = std::make_pair(from, to);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    pg::Result r = target_.exec(
        "SELECT CASE WHEN pg_catalog.to_regtype($1) IS NULL OR pg_catalog.to_regtype($2) IS NULL "
        "  THEN (SELECT typcategory = 'S' FROM pg_catalog.pg_type WHERE oid = pg_catalog.to_regtype($2)) IS TRUE "
        "  WHEN pg_catalog.to_regtype($1) = pg_catalog.to_regtype($2) THEN true "
        "  ELSE EXISTS (SELECT 1 FROM pg_catalog.pg_cast WHERE castsource = pg_catalog.to_regtype($1) "
        "               AND casttarget = pg_catalog.to_regtype($2) AND castcontext IN ('i', 'a')) "
        "    OR (SELECT typcategory = 'S' FROM pg_catalog.pg_type WHERE oid = pg_catalog.to_regtype($2)) END",
        std::vector<pg::Param>{from, to});
    bool ok = r.boolean(0, 0);
    cache_.emplace(key, ok);
    return ok;
  }

 private:
  struct Target {
    bool string_like = false;
    std::set<std::string> cast_from;  // types with an implicit or assignment cast to it
  };
  pg::Connection& target_;
  std::map<std::string, Target> known_;
  std::map<std::pair<std::string, std::string>, bool> cache_;
};

class Resolver {
 public:
  Resolver(const config::Config& cfg, source::Source& source, pg::Connection& target)
      : cfg_(cfg), source_(source), target_(target), types_(target) {}

  Resolution run(const std::vector<std::string>& only) {
    read_catalogs();
    std::vector<TablePlan> plans;
    for (const auto& t : cfg_.tables) plans.push_back(resolve_table(t));
    for (size_t i = 0; i < plans.size(); ++i) resolve_references(plans, i);
    Resolution res;
    res.plan.tables = order_parents_first(std::move(plans));
    resolve_foreign_keys(res.plan);
    select(res.plan, only);
    res.problems = std::move(problems_);
    res.notes = std::move(notes_);
    for (const auto& [how, tables] : grouped_) {
      res.run_notes.push_back("column " + how + " on " + std::to_string(tables.size()) + " table(s) (" +
                              pg::join(tables, ", ") + "): not compared, as with compare_ignore");
    }
    res.warnings = std::move(warnings_);
    res.source_tables = source_tables_;
    res.target_catalog = target_catalog_;
    return res;
  }

 private:
  // Every configured table on both sides, and the target's casts, in one
  // round trip per server (a per-table query costs a round trip each).
  void read_catalogs() {
    std::vector<std::string> source_names = source_table_names(cfg_), target_names = target_table_names(cfg_);
    pg::Pipeline p(target_);
    std::vector<pg::Param> names{catalog::table_names_param(target_names)};
    p.add(catalog::read_tables_sql(), names, [&](pg::Result& r) { target_tables_ = catalog::tables_from(r, target_names); });
    p.add(TypeCompatibility::prefetch_sql(), names, [&](pg::Result& r) { types_.prefetched(r); });
    p.add(catalog::foreign_keys_sql(), names, [&](pg::Result& r) { foreign_keys_from(r, target_names); });
    p.add(read_triggers_sql(), names,
          [&](pg::Result& r) { triggers_ = triggers_from(r, target_names, target_tables_); });
    p.add(target_catalog_sql(), names, [&](pg::Result& r) { target_catalog_ = r.text(0, 0); });
    source_tables_ = source_.read_tables(source_names);
    p.run();
  }

  // Rows of catalog::foreign_keys_sql(): one per column pair, in the constraint's order.
  void foreign_keys_from(const pg::Result& r, const std::vector<std::string>& names) {
    for (int i = 0; i < r.rows(); ++i) {
      auto& fks = target_fks_[names.at(static_cast<size_t>(r.int64(i, 0) - 1))];
      if (fks.empty() || fks.back().constraint != r.text(i, 1) || r.int64(i, 2) == 1) {
        TargetForeignKey fk;
        fk.constraint = r.text(i, 1);
        fk.parent_schema = r.text(i, 4);
        fk.parent_table = r.text(i, 5);
        fks.push_back(std::move(fk));
      }
      fks.back().columns.push_back(r.text(i, 3));
      fks.back().parent_columns.push_back(r.text(i, 6));
    }
  }

  // Maps each target foreign key's parent to a synced table and marks the
  // ones a configured reference covers. After the tables are ordered.
  static void resolve_foreign_keys(SyncPlan& plan) {
    for (auto& t : plan.tables) {
      for (auto& fk : t.foreign_keys) {
        for (size_t j = 0; j < plan.tables.size(); ++j) {
          const TablePlan& q = plan.tables[j];
          if (q.config && q.target.schema == fk.parent_schema && q.target.name == fk.parent_table) {
            fk.parent = static_cast<int>(j);
          }
        }
        std::set<std::pair<std::string, std::string>> pairs;
        for (size_t c = 0; c < fk.columns.size(); ++c) pairs.emplace(fk.columns[c], fk.parent_columns[c]);
        fk.covered = std::any_of(t.references.begin(), t.references.end(), [&](const ResolvedReference& ref) {
          if (fk.parent < 0 || ref.parent != static_cast<size_t>(fk.parent)) return false;
          std::set<std::pair<std::string, std::string>> theirs;
          for (size_t c = 0; c < ref.columns.size(); ++c) theirs.emplace(ref.columns[c], ref.parent_columns[c]);
          return theirs == pairs;
        });
      }
    }
  }

  void problem(const std::string& table, const std::string& what) {
    problems_.push_back("table " + table + ": " + what);
  }

  // Checks that every name in `names` is a column of `schema`.
  void expect_columns(const std::string& table, const catalog::TableSchema& schema,
                      const std::vector<std::string>& names, const std::string& role, const std::string& side) {
    for (const auto& n : names) {
      if (!schema.find(n)) {
        problem(table, role + " column '" + n + "' does not exist in " + side + " table " + schema.display_name());
      }
    }
  }

  TablePlan resolve_table(const config::Table& t) {
    TablePlan p;
    p.config = &t;
    p.name = t.name;
    p.target_name = t.target;
    p.duplicates = t.duplicates;
    const auto& src = source_tables_.at(t.name);
    const auto& tgt = target_tables_.at(t.target);
    if (!src) problem(t.name, "source table '" + t.name + "' does not exist on the source (" + source_.describe() + ")");
    if (!tgt) problem(t.name, "target table '" + t.target + "' does not exist on the target (" + target_.describe() + ")");
    if (!src || !tgt) return p;
    p.source = *src;
    p.target = *tgt;
    if (auto fks = target_fks_.find(t.target); fks != target_fks_.end()) p.foreign_keys = fks->second;
    const std::string& n = t.name;

    const config::Owner& owner = cfg_.owner_of(t);
    if (!owner.none) {
      if (!p.target.find(owner.column)) {
        problem(n, "owner column '" + owner.column + "' does not exist in target table " + p.target.display_name());
      }
      p.owner = ColumnValue{owner.column, owner.value};
    }
    for (const auto& [col, value] : cfg_.scope_of(t).equals) {
      if (!p.source.find(col) || !p.target.find(col)) {
        problem(n, "scope column '" + col + "' must exist in both " + p.source.display_name() + " (source) and " +
                       p.target.display_name() + " (target); a table without it sets 'scope: none'");
      }
      p.scope.emplace_back(col, value);
    }
    expect_columns(n, p.source, t.key, "key", "source");
    expect_columns(n, p.target, t.key, "key", "target");
    expect_columns(n, p.source, t.skip, "skip", "source");
    expect_columns(n, p.target, t.generated, "generated", "target");
    expect_columns(n, p.target, t.compare_ignore, "compare_ignore", "target");
    for (const auto& [col, value] : t.set) {
      if (!p.target.find(col)) problem(n, "set column '" + col + "' does not exist in target table " + p.target.display_name());
      p.constants.emplace_back(col, value);
    }
    for (const auto& k : t.key) {
      if (contains(t.skip, k) || contains(t.generated, k)) problem(n, "key column '" + k + "' cannot be skipped or generated");
    }
    p.key = t.key;
    resolve_lookups(p, t);
    stage_source_columns(p, t);
    stage_lookup_columns(p);
    judge_triggers(p);
    check_unfilled_target_columns(p, t);
    if (t.duplicates.keep_newest && !p.column(t.duplicates.by)) {
      problem(n, "duplicates 'by' column '" + t.duplicates.by + "' must be a column synced to the target");
    }
    if (!t.incremental.cursor.empty()) expect_columns(n, p.source, {t.incremental.cursor}, "incremental cursor", "source");
    if (p.owner) {
      for (const auto& k : p.key) {
        if (k == p.owner->first) problem(n, "the owner column '" + k + "' cannot be part of the key");
      }
    }
    for (const auto& [col, value] : p.scope) {
      if (!p.column(col)) problem(n, "scope column '" + col + "' must be synced (not skipped or generated)");
    }
    return p;
  }

  void resolve_lookups(TablePlan& p, const config::Table& t) {
    for (const auto& l : t.lookups) {
      const auto& from = source_tables_.at(l.from);
      if (!from) {
        problem(t.name, "lookup source table '" + l.from + "' does not exist on the source");
        continue;
      }
      expect_columns(t.name, p.source, l.match, "lookup match", "source");
      expect_columns(t.name, *from, l.match, "lookup match", "source");
      expect_columns(t.name, *from, {l.take}, "lookup take", "source");
      if (!p.target.find(l.column)) {
        problem(t.name, "lookup column '" + l.column + "' does not exist in target table " + p.target.display_name());
      }
      p.lookups.push_back(ResolvedLookup{l.column, *from, l.match, l.take});
    }
  }

  bool filled_otherwise(const TablePlan& p, const config::Table& t, const std::string& col) const {
    return contains(t.skip, col) || contains(t.generated, col) || (p.owner && p.owner->first == col) ||
           has_key(p.constants, col) ||
           std::any_of(p.lookups.begin(), p.lookups.end(), [&](const ResolvedLookup& l) { return l.column == col; });
  }

  void add_staged(TablePlan& p, const config::Table& t, const std::string& name, int lookup,
                  const catalog::Column& source_col) {
    const catalog::Column* target_col = p.target.find(name);
    if (!target_col) return;
    if (target_col->generated) {
      problem(t.name, "target column '" + name + "' is generated by the target server; list it under 'generated'");
      return;
    }
    // A source that converts value by value (SQLite) reports what does not convert, row by row.
    if (!source_.converts_values() && !types_.compatible(source_col.base_type, target_col->base_type)) {
      problem(t.name, "column '" + name + "': source type " + source_col.type + " cannot be stored in target type " +
                          target_col->type);
    }
    StagedColumn c;
    c.name = name;
    c.lookup = lookup;
    c.target = *target_col;
    c.stage_type = target_col->builtin_type ? target_col->base_type : "pg_catalog.text";
    c.compare = !contains(t.compare_ignore, name) && !contains(t.key, name);
    c.source_max_length = source_col.max_length;
    p.columns.push_back(std::move(c));
  }

  void stage_source_columns(TablePlan& p, const config::Table& t) {
    for (const auto& col : p.source.columns) {
      if (filled_otherwise(p, t, col.name)) continue;
      if (!p.target.find(col.name)) {
        problem(t.name, "source column '" + col.name + "' has no column in target table " + p.target.display_name() +
                            " (add it to 'skip' to leave it out)");
        continue;
      }
      add_staged(p, t, col.name, -1, col);
    }
  }

  void stage_lookup_columns(TablePlan& p) {
    for (size_t i = 0; i < p.lookups.size(); ++i) {
      const ResolvedLookup& l = p.lookups[i];
      const catalog::Column* take = l.from.find(l.take);
      if (!take || !p.target.find(l.column)) continue;
      add_staged(p, *p.config, l.column, static_cast<int>(i), *take);
    }
  }

  // Decision 0007: a synced column a target row trigger sets from the server
  // alone (`NEW.updated_at := now()`) never keeps the source's value, so it
  // is not compared (as if in compare_ignore) and a line says so. A column
  // set from the row's own values (a normalisation), a key column, or a
  // trigger whose assignments cannot be read is only warned about: ignoring
  // it could hide real changes.
  void judge_triggers(TablePlan& p) {
    for (const auto& tr : triggers_) {
      if (tr.table != p.target_name) continue;
      std::string who = "target trigger " + tr.name + " (" + tr.events() + ", function " + tr.function + ")";
      if (!tr.understood) {
        warnings_.push_back("table " + p.name + ": " + who + " is " +
                            (tr.language == "plpgsql" ? "plpgsql, but no `NEW.<column> :=` of a column of " +
                                                            p.target.display_name() + " was recognised in it"
                                                      : "written in " + tr.language + ", which stagesync cannot read") +
                            "; if it sets a synced column, every run rewrites that column's rows: add "
                            "compare_ignore: [<column>] to the table");
        continue;
      }
      for (const auto& a : tr.assigns) {
        StagedColumn* c = nullptr;
        for (auto& sc : p.columns)
          if (sc.name == a.column) c = &sc;
        if (!c) continue;  // not synced (skip, generated, owner, set: written by stagesync or not at all)
        bool key = contains(p.key, a.column);
        if (!key && !c->compare) continue;  // already compare_ignore
        if (key || a.row_dependent) {
          warnings_.push_back("table " + p.name + ": " + who + " sets column " + a.column +
                              (key ? ", a key column: rows may never match their source rows"
                                   : " from the row's own values; if that changes what the sync "
                                     "writes, every run rewrites the row: add compare_ignore: [" +
                                         a.column + "] to the table"));
          continue;
        }
        c->compare = false;
        notes_.push_back("table " + p.name + ": column " + a.column + " is set by " + who +
                         ", so it is not compared (as with compare_ignore: [" + a.column + "])");
        std::string how = a.column + " is set by target triggers (" + tr.events() + ", function " + tr.function + ")";
        auto g = std::find_if(grouped_.begin(), grouped_.end(), [&](const auto& e) { return e.first == how; });
        if (g == grouped_.end()) g = grouped_.insert(grouped_.end(), {how, {}});
        g->second.push_back(p.name);
      }
    }
  }

  void check_unfilled_target_columns(const TablePlan& p, const config::Table& t) {
    for (const auto& col : p.target.columns) {
      if (!col.not_null || col.has_default) continue;
      if (p.column(col.name) || (p.owner && p.owner->first == col.name) || has_key(p.constants, col.name)) continue;
      problem(t.name, "target column '" + col.name + "' is NOT NULL without a default, and nothing fills it " +
                          "(it is not in the source table, nor in 'set' or 'lookups')");
    }
  }

  void resolve_references(std::vector<TablePlan>& plans, size_t i) {
    TablePlan& p = plans[i];
    if (!p.config) return;
    for (const auto& r : p.config->references) {
      auto parent = std::find_if(plans.begin(), plans.end(), [&](const TablePlan& q) { return q.name == r.parent; });
      if (parent == plans.end()) {
        problem(p.name, "reference parent '" + r.parent + "' is not a table listed in the configuration");
        continue;
      }
      std::vector<std::string> parent_cols = r.parent_columns.empty() ? parent->config->key : r.parent_columns;
      if (parent_cols.empty()) {
        problem(p.name, "reference to '" + r.parent + "' needs 'parent_columns' (the parent has 'key: none')");
        continue;
      }
      // By position: fewer columns than the parent's key match its leading
      // columns (SPEC 4: tasks -> jobshead(job_id) keyed (job_id, sporg_id)).
      if (r.parent_columns.empty() && r.columns.size() < parent_cols.size()) parent_cols.resize(r.columns.size());
      if (parent_cols.size() != r.columns.size()) {
        problem(p.name, "reference to '" + r.parent + "' has " + std::to_string(r.columns.size()) +
                            " column(s) but the parent's key has " + std::to_string(parent_cols.size()) +
                            " (set 'parent_columns')");
        continue;
      }
      bool ok = true;
      for (const auto& c : r.columns) {
        if (!p.column(c)) {
          problem(p.name, "reference column '" + c + "' is not a column synced to the target");
          ok = false;
        }
      }
      for (const auto& c : parent_cols) {
        if (!parent->column(c) && !parent->target.columns.empty()) {
          problem(p.name, "reference parent column '" + c + "' is not a column synced to " + parent->name);
          ok = false;
        }
      }
      if (ok) {
        p.references.push_back(
            ResolvedReference{r.columns, static_cast<size_t>(parent - plans.begin()), parent_cols, r.on_orphan});
      }
    }
  }

  // Topological order (parents first), stable with respect to the config.
  std::vector<TablePlan> order_parents_first(std::vector<TablePlan> plans) {
    size_t n = plans.size();
    std::vector<int> state(n, 0);  // 0 new, 1 visiting, 2 done
    std::vector<size_t> order;
    std::vector<size_t> new_index(n);
    bool cycle = false;
    std::function<void(size_t)> visit = [&](size_t i) {
      if (state[i] == 2) return;
      if (state[i] == 1) {
        if (!cycle) problem(plans[i].name, "references form a cycle; parents must come before children");
        cycle = true;
        return;
      }
      state[i] = 1;
      for (const auto& r : plans[i].references)
        if (r.parent != i) visit(r.parent);
      state[i] = 2;
      new_index[i] = order.size();
      order.push_back(i);
    };
    for (size_t i = 0; i < n; ++i) visit(i);
    std::vector<TablePlan> out;
    for (size_t i : order) out.push_back(std::move(plans[i]));
    for (auto& p : out)
      for (auto& r : p.references) r.parent = new_index[r.parent];
    return out;
  }

  void select(SyncPlan& plan, const std::vector<std::string>& only) {
    if (only.empty()) return;
    for (auto& p : plan.tables) p.selected = false;
    for (const auto& name : only) {
      auto it = std::find_if(plan.tables.begin(), plan.tables.end(),
                             [&](const TablePlan& p) { return p.name == name || p.target_name == name; });
      if (it == plan.tables.end()) {
        problems_.push_back("--tables: '" + name + "' is not a source or target table in the configuration");
      } else {
        it->selected = true;
      }
    }
  }

  const config::Config& cfg_;
  source::Source& source_;
  pg::Connection& target_;
  TypeCompatibility types_;
  catalog::Tables source_tables_;  // every configured source table and lookup table, by configured name
  catalog::Tables target_tables_;
  std::map<std::string, std::vector<TargetForeignKey>> target_fks_;  // by configured target name
  std::vector<TargetTrigger> triggers_;  // BEFORE row triggers of every target table
  std::vector<std::string> problems_;
  std::vector<std::string> notes_;
  std::vector<std::pair<std::string, std::vector<std::string>>> grouped_;  // the same column and function: its tables
  std::vector<std::string> warnings_;
  std::string target_catalog_;  // target_catalog_sql()'s answer
};

}  // namespace

std::vector<std::string> source_table_names(const config::Config& cfg) {
  std::vector<std::string> names;
  for (const auto& t : cfg.tables) {
    names.push_back(t.name);
    for (const auto& l : t.lookups) names.push_back(l.from);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::vector<std::string> target_table_names(const config::Config& cfg) {
  std::vector<std::string> names;
  for (const auto& t : cfg.tables) names.push_back(t.target);
  return names;
}

std::string target_catalog_sql() {
  // Each of the catalog reads above as one text (their rows in their own
  // order), then one digest of all four. A row order that differs between two
  // reads only makes a kept plan be resolved again.
  std::string parts;
  for (const std::string& sql : {catalog::read_tables_sql(), TypeCompatibility::prefetch_sql(),
                                 catalog::foreign_keys_sql(), read_triggers_sql()}) {
    parts += std::string(parts.empty() ? "" : ", ") +
             "(SELECT coalesce(pg_catalog.string_agg(q::text, ','), '') FROM (" + sql + ") q)";
  }
  return "SELECT pg_catalog.md5(pg_catalog.concat_ws('|', " + parts + "))";
}

const StagedColumn* TablePlan::column(const std::string& name) const {
  for (const auto& c : columns)
    if (c.name == name) return &c;
  return nullptr;
}

std::string TargetForeignKey::parent_qualified() const { return pg::qualified(parent_schema, parent_table); }

std::string TargetForeignKey::parent_display() const { return parent_schema + "." + parent_table; }

std::string TargetForeignKey::suggested_reference(const SyncPlan& plan, const std::string& child) const {
  std::string parent_name = parent_table;
  bool by_key = false;
  if (parent >= 0) {
    const TablePlan& q = plan.tables[static_cast<size_t>(parent)];
    parent_name = q.name;
    // A reference without parent_columns matches the parent's key (its leading columns) by position.
    by_key = q.key.size() >= parent_columns.size() &&
             std::equal(parent_columns.begin(), parent_columns.end(), q.key.begin());
  }
  std::string entry = "add to " + child + ": references: [{ columns: [" + pg::join(columns, ", ") +
                      "], parent: " + parent_name;
  if (!by_key) entry += ", parent_columns: [" + pg::join(parent_columns, ", ") + "]";
  entry += ", on_orphan: skip }]";
  if (parent < 0) {
    entry = "add " + parent_display() + " to 'tables' (a reference's parent is a configured table), then " + entry;
  }
  return entry;
}

std::vector<size_t> SyncPlan::selected() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < tables.size(); ++i)
    if (tables[i].selected) out.push_back(i);
  return out;
}

Resolution resolve(const config::Config& cfg, source::Source& source, pg::Connection& target,
                   const std::vector<std::string>& only) {
  return Resolver(cfg, source, target).run(only);
}

}  // namespace stagesync::plan
