// SyncPlan: the configuration resolved against both databases.
//
// resolve() matches every configured name with a real table and column,
// decides how each target column is filled (from the source, by a lookup, as
// a constant, by the server), and orders tables so parents come before their
// children. Every problem is collected, so `check` reports them all in one
// pass; a plan with problems must not be run.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "catalog/table_schema.h"
#include "config/config.h"
#include "pg/connection.h"
#include "plan/target_triggers.h"

namespace stagesync::source {
class Source;  // source/source.h
}

namespace stagesync::plan {

// A column carried through the staging table. Source and target share names.
struct StagedColumn {
  std::string name;
  int lookup = -1;         // index into TablePlan::lookups, or -1 when read from the source table
  std::string stage_type;  // type of the staging column (= the cast applied at the source)
  catalog::Column target;  // the target column it lands in
  bool compare = true;     // differences in it make a row "changed"
  int source_max_length = -1;  // character limit of the source column, -1 when none (or unknown)
};

struct ResolvedLookup {
  std::string column;
  catalog::TableSchema from;
  std::vector<std::string> match;
  std::string take;
};

struct ResolvedReference {
  std::vector<std::string> columns;         // child columns (all staged)
  size_t parent = 0;                        // index into SyncPlan::tables
  std::vector<std::string> parent_columns;  // columns of the parent table
  config::OrphanPolicy policy = config::OrphanPolicy::Keep;
};

struct SyncPlan;

// A foreign key of the target table (child side), read from the target's
// catalog. "Covered" when a configured reference of the table has the same
// column pairs onto the same parent: prepare judges it by its on_orphan
// policy. An uncovered one is judged by prepare too (a violating staged row
// refuses the run before any write), and `check` names the reference that
// would handle it.
struct TargetForeignKey {
  std::string constraint;
  std::vector<std::string> columns;         // child columns, in the constraint's order
  std::string parent_schema, parent_table;  // the referenced target table
  std::vector<std::string> parent_columns;  // referenced columns, matching `columns` by position
  int parent = -1;                          // index into SyncPlan::tables when the parent is synced, else -1
  bool covered = false;

  std::string parent_qualified() const;  // quoted "schema"."table"
  std::string parent_display() const;    // schema.table, for messages
  // The `references:` entry that would handle it, for table `child` of `plan`.
  std::string suggested_reference(const SyncPlan& plan, const std::string& child) const;
};

using ColumnValue = std::pair<std::string, std::string>;

struct TablePlan {
  const config::Table* config = nullptr;
  std::string name;         // source table as configured
  std::string target_name;  // target table as configured
  bool selected = true;     // part of this run (--tables)
  catalog::TableSchema source;
  catalog::TableSchema target;
  std::vector<StagedColumn> columns;
  std::vector<std::string> key;             // empty when `key: none`
  std::optional<ColumnValue> owner;         // owner column and value; nullopt: owns every row
  std::vector<ColumnValue> scope;           // equality filter on both sides
  std::vector<ColumnValue> constants;       // `set:` columns
  std::vector<ResolvedLookup> lookups;
  std::vector<ResolvedReference> references;
  std::vector<TargetForeignKey> foreign_keys;  // of the target table, covered or not
  config::Duplicates duplicates;

  bool keyed() const { return !key.empty(); }
  const StagedColumn* column(const std::string& name) const;
};

struct SyncPlan {
  std::vector<TablePlan> tables;  // parents before children

  // Indexes of selected tables, parents first.
  std::vector<size_t> selected() const;
};

struct Resolution {
  SyncPlan plan;
  std::vector<std::string> problems;  // empty when the plan can run
  std::vector<std::string> notes;     // what stagesync decided for the user, one line per table and column (check)
  std::vector<std::string> run_notes;  // the same, one line per column and trigger function (plan, sync, verify)
  std::vector<std::string> warnings;  // what it could not judge (target triggers it cannot read)
  // What the plan was resolved from, for a caller that keeps it across runs
  // (a follower's batches, docs/decisions/0014-a-followers-kept-session.md):
  catalog::Tables source_tables;  // source_table_names(cfg) as the source showed them
  std::string target_catalog;     // target_catalog_sql()'s answer, read with the target's catalog
};

// The tables resolve() reads the catalog of: every configured source and lookup table (sorted, once each), and
// every target table in the configuration's order.
std::vector<std::string> source_table_names(const config::Config& cfg);
std::vector<std::string> target_table_names(const config::Config& cfg);
// $1: catalog::table_names_param(target_table_names(cfg)). One text (a digest)
// of everything resolve() reads of the target's catalog: columns, types and
// their casts, foreign keys, triggers. Any change to them changes it.
std::string target_catalog_sql();

// `only` lists source or target names (from --tables); empty selects all.
Resolution resolve(const config::Config& cfg, source::Source& source, pg::Connection& target,
                   const std::vector<std::string>& only);

}  // namespace stagesync::plan
