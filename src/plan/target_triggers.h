// Target row triggers that set column values (decision 0007).
//
// A BEFORE INSERT or UPDATE row trigger on a target table may assign columns
// (`NEW.updated_at := now()` on every table of the reference cloud schema).
// Such a column never keeps the value the sync wrote: compared, it makes the
// row differ from its source row after every update, so `verify` reports it
// and every run rewrites it. resolve() reads every enabled, non-internal
// trigger of the target tables in the catalog query batch (no round trip of
// its own) and finds what each one assigns by a conservative reading of the
// function's source: it never guesses a column that is not written
// `NEW.<column> :=` (or `=`) at the start of a statement.
#pragma once

#include <string>
#include <vector>

#include "catalog/table_schema.h"
#include "pg/result.h"

namespace stagesync::plan {

struct TriggerAssignment {
  std::string column;  // a real column of the table
  bool row_dependent;  // the value reads NEW or OLD (a normalisation), rather than the server alone (now())
};

struct TargetTrigger {
  std::string table;  // the configured target name
  std::string name;
  std::string function;  // schema.name, for people
  std::string language;
  bool on_insert = false;
  bool on_update = false;
  std::vector<TriggerAssignment> assigns;
  // false: the function is not plpgsql (nor contrib's moddatetime), or no assignment to a column was recognised.
  bool understood = false;

  std::string events() const;  // "BEFORE UPDATE", "BEFORE INSERT OR UPDATE"
};

// $1: the target tables' names (catalog::table_names_param), in the same order as `names` in triggers_from().
std::string read_triggers_sql();
std::vector<TargetTrigger> triggers_from(const pg::Result& r, const std::vector<std::string>& names,
                                         const catalog::Tables& tables);

// The assignments `NEW.<column> := <expr>` / `NEW.<column> = <expr>` at the start of a statement in
// plpgsql source, restricted to the table's columns (identifiers case-folded unless quoted).
std::vector<TriggerAssignment> plpgsql_assignments(const std::string& source, const catalog::TableSchema& table);

}  // namespace stagesync::plan
