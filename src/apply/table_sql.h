// SQL fragments shared by prepare, apply and verify for one table. All
// target-side SQL about a table's rows is built from these, so the notions of
// "owned", "same key" and "same row" cannot drift apart.
#pragma once

#include <string>
#include <vector>

#include "pg/sql.h"
#include "plan/sync_plan.h"

namespace stagesync::apply {

class TableSql {
 public:
  TableSql(const plan::TablePlan& table, std::string staging) : t_(table), staging_(std::move(staging)) {}

  const plan::TablePlan& table() const { return t_; }
  const std::string& staging() const { return staging_; }

  // Incremental runs stage only changed rows, so "vanished from the source"
  // cannot mean "not staged": it is the explicit list of keys in `deletions`
  // (a table with the key columns, found by source::postgres::Reconciliation). Empty: full.
  // The list may name keys of no owned target row (a collision's key, a key
  // the WAL listed that the target never held): only owned rows are deleted,
  // and every reader of the list asks for owned rows itself.
  void set_deletions(std::string deletions) { deletions_ = std::move(deletions); }
  const std::string& deletions() const { return deletions_; }
  bool incremental() const { return !deletions_.empty(); }
  // "No row of this target table (alias `alias`) for which `match` holds is
  // still there after this run's deletes of owned rows" (apart from staged
  // rows, which the caller checks itself). Written as anti-joins without an
  // OR: an OR of a deletion-list test inside one subquery is evaluated row
  // by row over the whole table (0.6 s for a 243,000-row parent).
  std::string no_surviving_row(const std::string& alias, const std::string& match, pg::Params& params) const;
  std::string target() const { return t_.target.qualified_name(); }

  // alias."owner" = $n AND alias."scope" = $m ...; "true" when every row is owned.
  std::string owned(const std::string& alias, pg::Params& params) const;
  // a."k1" = b."k1" AND ...
  std::string same_key(const std::string& a, const std::string& b) const;
  // Value of a staged column as the target stores it (for comparison and checksums).
  std::string staged_value(const std::string& alias, const plan::StagedColumn& c) const;
  // Value of a target column, comparable with staged_value().
  std::string target_value(const std::string& alias, const plan::StagedColumn& c) const;
  // Expression inserted/assigned into the target column.
  std::string insert_value(const std::string& alias, const plan::StagedColumn& c) const;
  // A constant (`set:`) as a typed parameter.
  std::string constant(const plan::ColumnValue& kv, pg::Params& params) const;

  // The tuple that decides "the row changed": compared columns and constants.
  std::string staged_tuple(const std::string& alias, pg::Params& params, bool with_key) const;
  std::string target_tuple(const std::string& alias, pg::Params& params, bool with_key) const;
  bool has_compared_values() const;
  bool is_key(const plan::StagedColumn& c) const;

  // json_build_object of the key columns (the whole row when keyless), as text.
  std::string key_json(const std::string& alias) const;
  // The inverse for key column `column`: its staged value out of a key_json()
  // text `json` (NULL when absent).
  std::string key_from_json(const std::string& json, const std::string& column) const;
  // "k1 type1, k2 type2": the key columns with their staging types (DDL).
  std::string key_ddl() const;

  // Target columns written by INSERT, and the matching SELECT list over staging alias "s".
  std::vector<std::string> insert_columns() const;
  std::string insert_select(pg::Params& params) const;

 private:
  const plan::TablePlan& t_;
  std::string staging_;
  std::string deletions_;
};

}  // namespace stagesync::apply
