// ConfigDraft: the decisions `stagesync init` takes from two catalogs, each
// with the reason the file will show. Pure: no database is touched here
// (draft_config works on what CatalogReader read; the one data question, how
// often source keys repeat, is asked through key_probes/apply_repeated_keys).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "init/catalog_reader.h"

namespace stagesync::init {

struct DraftReference {
  std::vector<std::string> columns;
  std::string parent;                       // the parent's source name
  std::vector<std::string> parent_columns;  // empty: the parent's key, by position
  std::string why;
};

struct DraftLookup {  // written as a commented hint
  std::string column, from;
  std::vector<std::string> match;
  std::string take;
  std::string why;
};

struct DraftTable {
  std::string name;       // source table
  std::string target;     // target table; empty when none matched
  std::string match_how;  // how a renamed table was matched (guessed, how sure); empty for the same name
  bool enabled = true;    // false: written commented out
  std::string disabled_because;

  std::vector<std::string> key;  // empty: key none
  std::string key_why;
  std::vector<std::string> generated, skip, compare_ignore;
  std::vector<std::string> generated_why, skip_why, compare_ignore_why;  // one line per column
  std::string newest_by;  // non-empty: duplicates: { keep: newest, by: newest_by }
  std::string duplicates_why;
  bool owner_none = false;
  std::string owner_why;
  std::vector<DraftReference> references;
  std::vector<DraftReference> reference_hints;  // written commented out, `on_orphan: keep`
  std::vector<DraftLookup> lookup_hints;
  std::vector<std::string> notes;       // more comments: hints that are not entries
  std::string other_owner;              // the owner value of another writer's table (disabled): a reverse hint
  std::vector<std::string> target_key;  // its target primary key, for that hint
};

struct ConfigDraft {
  std::string source_url, target_url;  // never with a password
  std::string source_sqlite;           // a SQLite source file instead of source_url (issue 14)
  std::string source_password_env, target_password_env;
  std::string source_where, target_where;
  std::string owner_column, owner_value, owner_why;  // empty column: no owner
  std::string scope_column, scope_why;               // a commented hint; empty when none
  std::vector<DraftTable> tables;                    // enabled tables parents first, then the commented-out ones
  std::vector<std::string> unmatched_targets;        // target tables no source table feeds, with why
  std::vector<std::string> notes;                    // for the file's head
};

// `only` (from --tables) keeps the pairs whose source or target name it lists;
// a name that is neither is a config::ConfigError.
ConfigDraft draft_config(const DatabaseCatalog& source, const DatabaseCatalog& target,
                         const std::vector<std::string>& only);

// Keyed tables whose source has no unique index guaranteeing the key: their
// repetitions decide `duplicates`.
std::vector<KeyProbe> key_probes(const ConfigDraft& draft, const DatabaseCatalog& source);
// A column is a change column (for `by`) when named like one (updated_at, modified_at, ...) and a date or time:
// on the source, or on the target when the source's type says nothing (a SQLite column: category 'U').
void apply_repeated_keys(ConfigDraft& draft, const DatabaseCatalog& source, const DatabaseCatalog& target,
                         const std::vector<KeyProbe>& probes, const std::vector<int64_t>& repeated);

}  // namespace stagesync::init
