// `stagesync init`: a first configuration written from the two databases'
// catalogs. Reads both (CatalogReader, read-only sessions), drafts the
// decisions (ConfigDraft), asks the source how often the chosen keys repeat,
// and writes the YAML. Writes nothing to either database.
#pragma once

#include <string>
#include <vector>

#include "init/catalog_reader.h"
#include "init/config_draft.h"

namespace stagesync::init {

struct InitOptions {
  std::string source_url;
  std::string sqlite_path;  // a SQLite source file instead of source_url
  std::string target_url;
  std::vector<std::string> tables;  // --tables: source or target names; empty: all
  std::string output;               // --output, the file to be written ("": standard output): sqlite_path is
                                    // written relative to its folder when the SQLite file lies under it
};

struct InitResult {
  std::string yaml;
  std::vector<std::string> messages;  // for the person running it (guesses, variables to set)
};

// From two readers (any kind of source: with sqlite_path set, the file names it instead of a source URL);
// the URLs are what the file will say, without their passwords.
InitResult write_config(CatalogReader& source, CatalogReader& target, const InitOptions& options);

// Connects to both databases (a SQLite source: opens the file read-only and reads one sqlite::Snapshot of it)
// and writes the file's text. A --sqlite path with no file, or with a file that is not a SQLite database, is a
// config::ConfigError (exit 2, like a connection string that is not valid); a damaged or locked file is a
// sqlite::Error (exit 4, like a database error).
InitResult run_init(const InitOptions& options);

// What `source: { sqlite: ... }` says for `sqlite_path`: relative to the folder of `output` when the file lies
// under it (the configuration and its desktop file can move together; the loader reads a relative path from the
// configuration's folder), else absolute. Lexical: symbolic links are not followed, as the loader does not.
std::string sqlite_path_in_config(const std::string& sqlite_path, const std::string& output);

}  // namespace stagesync::init
