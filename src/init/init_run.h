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
  std::string sqlite_path;  // a SQLite source: refused until issue 14 adds its CatalogReader
  std::string target_url;
  std::vector<std::string> tables;  // --tables: source or target names; empty: all
};

struct InitResult {
  std::string yaml;
  std::vector<std::string> messages;  // for the person running it (guesses, variables to set)
};

// From two readers (any kind of source: with sqlite_path set, the file names it instead of a source URL);
// the URLs are what the file will say, without their passwords.
InitResult write_config(CatalogReader& source, CatalogReader& target, const InitOptions& options);

// Connects to both databases (refusing a SQLite source with run::Refused for now) and writes the file's text.
InitResult run_init(const InitOptions& options);

}  // namespace stagesync::init
