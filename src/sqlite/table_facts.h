// What a SQLite file's schema says about tables beyond their columns, in the shapes the rest of stagesync uses
// for PostgreSQL (catalog::TableFacts): unique indexes with the primary key first, foreign keys, defaults.
#pragma once

#include <string>
#include <vector>

#include "catalog/table_facts.h"
#include "sqlite/database.h"

namespace stagesync::sqlite {

// For each of `names` (matched as read_tables() matches them; a name that is no table maps to empty facts):
//  - unique: the primary key first (named "primary key"; for an INTEGER PRIMARY KEY, the rowid's alias, there is
//    no index, the key is still listed), then unique indexes over plain columns without WHERE, by name;
//  - foreign_keys: constraint "<table>.fk<N>" (SQLite keeps no names), parent schema "main", parent columns as
//    declared, or the parent's primary key when the declaration names none;
//  - fills: a DEFAULT (default_expr as written, e.g. "'x'", "0", "CURRENT_TIMESTAMP"); a generated column
//    (computed); an INTEGER PRIMARY KEY, which SQLite fills from the rowid when no value is given (identity 'd').
catalog::Facts read_facts(Database& db, const std::vector<std::string>& names);

// Every table and view of the main schema a configuration can name (SQLite's own sqlite_* tables left out),
// by name.
std::vector<std::string> table_names(Database& db);

}  // namespace stagesync::sqlite
