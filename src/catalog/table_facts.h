// What a table's catalog says beyond its columns: unique indexes (the primary
// key among them), foreign keys (child side), and how the server fills columns
// (defaults, identity, serial, computed). Read for many tables in one statement
// each, so a caller can put them in one pg::Pipeline with read_tables_sql().
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pg/result.h"

namespace stagesync::catalog {

// A unique index over plain columns (no expression, no WHERE clause), valid.
struct UniqueIndex {
  std::string name;
  bool primary = false;
  std::vector<std::string> columns;  // in the index's order
};

struct ForeignKey {
  std::string constraint;
  std::vector<std::string> columns;         // child columns, in the constraint's order
  std::string parent_schema, parent_table;  // the referenced table
  std::vector<std::string> parent_columns;  // matching `columns` by position
};

// How the server fills a column on INSERT when no value is given.
struct ColumnFill {
  std::string default_expr;  // pg_get_expr of the DEFAULT, empty when none
  char identity = 0;         // 'a' (ALWAYS), 'd' (BY DEFAULT), or 0
  bool computed = false;     // GENERATED ALWAYS AS (...) STORED
  bool serial() const;       // DEFAULT nextval(...): serial/bigserial or a hand-made sequence default
  // The DEFAULT is a string constant ('D'::bpchar, 'x'::text, 'x'): its value; else empty with false.
  bool constant_text(std::string& value) const;
};

struct TableFacts {
  std::vector<UniqueIndex> unique;  // primary key first, then by name
  std::vector<ForeignKey> foreign_keys;
  std::map<std::string, ColumnFill> fills;  // columns with a default, identity or computed value
  const UniqueIndex* primary_key() const;
};

// By configured name, for every name given (tables without facts map to an empty TableFacts).
using Facts = std::map<std::string, TableFacts>;

// Each takes $1: catalog::table_names_param(names); their readers fill `out` for those names.
// foreign_keys_sql's rows (also read by plan::resolve): ordinal of the name, constraint, position,
// child column, parent schema, parent table, parent column; one per column pair, in the constraint's order.
std::string unique_indexes_sql();
std::string foreign_keys_sql();
std::string column_fills_sql();
void unique_indexes_from(const pg::Result& r, const std::vector<std::string>& names, Facts& out);
void foreign_keys_from(const pg::Result& r, const std::vector<std::string>& names, Facts& out);
void column_fills_from(const pg::Result& r, const std::vector<std::string>& names, Facts& out);

}  // namespace stagesync::catalog
