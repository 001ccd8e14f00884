// A SQLite file's tables and columns, as the rest of stagesync sees tables (catalog::TableSchema).
#pragma once

#include <string>
#include <vector>

#include "catalog/table_schema.h"
#include "sqlite/database.h"

namespace stagesync::sqlite {

// Each of `names` ("table", or "main.table"), matched case-insensitively (ASCII, as SQLite does); nullopt when
// the main schema has no such table or view. TableSchema: schema "main", the name as the file spells it.
// Column: name as declared; type = the declared type as written ("VARCHAR(40)", "" when none); base_type =
// "sqlite:" + the type affinity SQLite derives from it ("sqlite:integer", "sqlite:text", "sqlite:real",
// "sqlite:numeric", "sqlite:blob"); not_null as declared; has_default for a DEFAULT or a generated column,
// generated for a generated column; max_length -1, builtin_type and comparable true, category 'U'.
// Throws Error for a file that cannot be read, or a view whose definition no longer works.
catalog::Tables read_tables(Database& db, const std::vector<std::string>& names);

// "sqlite:integer", ...: SQLite's affinity rules (datatype3.html, section 3.1) applied to a declared type.
std::string affinity_of(const std::string& declared_type);

}  // namespace stagesync::sqlite
