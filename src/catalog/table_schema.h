// What a PostgreSQL table looks like, read from the system catalogs.
#pragma once

#include <cstdint>
#include <map>
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

  bool operator==(const Column&) const = default;
};

struct TableSchema {
  std::string schema;
  std::string name;
  std::vector<Column> columns;

  const Column* find(const std::string& column) const;
  std::string qualified_name() const;  // quoted "schema"."name"
  std::string display_name() const;    // schema.name, unquoted, for messages

  bool operator==(const TableSchema&) const = default;
};

// Reads `name` ("table" resolved through search_path, or "schema.table").
// Returns nullopt when no such table or view exists; throws pg::Error on
// connection or permission problems.
std::optional<TableSchema> read_table(pg::Connection& conn, const std::string& name);

// Tables by configured name, each as read_table() would return it.
using Tables = std::map<std::string, std::optional<TableSchema>>;
// Every one of `names` in one statement (one round trip, however many tables).
Tables read_tables(pg::Connection& conn, const std::vector<std::string>& names);
// The statement and its reader, for callers that batch it with others (pg::Pipeline).
std::string read_tables_sql();
Tables tables_from(const pg::Result& rows, const std::vector<std::string>& names);
// The parameter read_tables_sql() takes for `names`.
std::string table_names_param(const std::vector<std::string>& names);

}  // namespace stagesync::catalog
