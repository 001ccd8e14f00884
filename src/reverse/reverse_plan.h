// A `reverse:` entry resolved against both catalogs: which target (cloud)
// rows are read, which columns are staged on the desktop, and the SQL value
// each desktop column gets. Every problem is collected (check reports them
// all in one pass); nothing here talks to a server.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "catalog/table_schema.h"
#include "config/config.h"

namespace stagesync::reverse {

// One desktop column reverse sync writes.
struct DesktopWrite {
  catalog::Column column;    // desktop catalog
  std::string raw;           // SQL over staged alias "s" (cloud names): the value before it becomes the desktop type
  std::string value;         // raw, as the desktop type (without modifier: the column's own limit is checked first)
  bool check_input = false;  // the value travels as text: the desktop type's input must accept it (checked first)
  std::string origin;        // for messages: "cloud column timefrom", "convert", "set"
};

struct EntryPlan {
  const config::Reverse* config = nullptr;
  std::string id;  // bookkeeping name: "cloud -> desktop"
  catalog::TableSchema cloud;
  catalog::TableSchema desktop;
  std::vector<catalog::Column> staged;   // cloud columns copied down, in cloud order
  std::vector<std::string> key;          // cloud names
  std::vector<std::string> desktop_key;  // desktop names, same order
  std::vector<DesktopWrite> writes;      // desktop columns written, in desktop order
  std::string rows_filter;               // over target alias "t": which rows (owner, scope)
  std::string rows_text;                 // the same for people: "source = 'M'", "all rows but source = 'D'"

  // ARRAY[t."k1"::text, ...]: the key as bookkeeping stores it.
  std::string cloud_key(const std::string& alias) const;
  std::string desktop_key_array(const std::string& alias) const;
  // md5 of the staged cloud columns of a target row (alias), and of the written desktop columns.
  std::string mobile_hash(const std::string& alias) const;
  std::string desktop_hash(const std::string& alias) const;
};

struct ReversePlan {
  std::vector<EntryPlan> entries;
  std::vector<std::string> problems;
  std::vector<std::string> facts;  // for check: one line per entry
};

// The cloud and desktop names every entry needs read from the catalogs.
std::vector<std::string> cloud_tables(const config::Config& cfg);
std::vector<std::string> desktop_tables(const config::Config& cfg);

// `selected`: --tables (cloud or desktop names); empty: all entries. An unknown name is a problem.
ReversePlan resolve(const config::Config& cfg, const catalog::Tables& cloud, const catalog::Tables& desktop,
                    const std::vector<std::string>& selected);

}  // namespace stagesync::reverse
