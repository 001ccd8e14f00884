// What a PostgreSQL table looks like, read from the system catalogs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pg/connection.h"

namespace stagesync::catalog {

struct Column {
  std::string name;
  std::string type;       // full type, e.g. "character varying(40)" (format_type)
  std::string base_type;  // schema-qualified type without modifier, e.g. "pg_catalog.varchar"
  uint32_t type_oid = 0;
  bool builtin_type = true;   // the type exists on every PostgreSQL server
  bool not_null = false;
  bool has_default = false;   // DEFAULT, identity or generated: the server fills it
  bool generated = false;     // identity or GENERATED ALWAYS column
  bool comparable = true;     // has an equality operator (json, xml, geometric types do not)
  int max_length = -1;        // character limit of varchar(n)/char(n), else -1
  char category = 'U';        // pg_type.typcategory
};

struct TableSchema {
  std::string schema;
  std::string name;
  std::vector<Column> columns;

  const Column* find(const std::string& column) const;
  std::string qualified_name() const;  // quoted "schema"."name"
  std::string display_name() const;    // schema.name, unquoted, for messages
};

// Reads `name` ("table" resolved through search_path, or "schema.table").
// Returns nullopt when no such table or view exists; throws pg::Error on
// connection or permission problems.
std::optional<TableSchema> read_table(pg::Connection& conn, const std::string& name);

}  // namespace stagesync::catalog
