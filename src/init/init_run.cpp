#include "init/init_run.h"

#include <filesystem>
#include <optional>

#include "config/config.h"
#include "init/connection_url.h"
#include "init/sqlite_catalog_reader.h"
#include "init/yaml_writer.h"
#include "pg/connection.h"
#include "sqlite/snapshot.h"

namespace stagesync::init {

namespace {
constexpr const char* kSourcePasswordEnv = "STAGESYNC_SOURCE_PASSWORD";
constexpr const char* kTargetPasswordEnv = "STAGESYNC_TARGET_PASSWORD";

std::filesystem::path absolute_path(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal();
}

// Reads the SQLite file's catalog and the target's, then drafts.
InitResult init_from_sqlite(const InitOptions& options) {
  std::string where = "SQLite file " + absolute_path(options.sqlite_path).string();
  std::optional<sqlite::Database> file;
  try {
    file.emplace(options.sqlite_path);
  } catch (const sqlite::Error& e) {
    // The path names no database: the request cannot be used as given. A damaged or locked file is a database
    // error, and goes on as one (exit 4).
    if (e.kind() == sqlite::Error::Kind::Missing || e.kind() == sqlite::Error::Kind::NotDatabase) {
      throw config::ConfigError({std::string("--sqlite: ") + e.what()});
    }
    throw;
  }
  sqlite::Snapshot snapshot(*file);
  SqliteCatalogReader source_reader(snapshot.reader(), where);
  pg::Connection target(pg::Endpoint{options.target_url, "", "stagesync init"});
  PostgresCatalogReader target_reader(target);
  return write_config(source_reader, target_reader, options);
}

}  // namespace

std::string sqlite_path_in_config(const std::string& sqlite_path, const std::string& output) {
  std::filesystem::path file = absolute_path(sqlite_path);
  if (output.empty()) return file.string();
  std::filesystem::path relative = file.lexically_relative(absolute_path(output).parent_path());
  if (relative.empty() || *relative.begin() == "..") return file.string();
  return relative.string();
}

InitResult write_config(CatalogReader& source, CatalogReader& target, const InitOptions& options) {
  SafeUrl src = options.sqlite_path.empty() ? without_password(options.source_url, "source") : SafeUrl{};
  SafeUrl tgt = without_password(options.target_url, "target");
  DatabaseCatalog source_catalog = source.read();
  DatabaseCatalog target_catalog = target.read();
  ConfigDraft draft = draft_config(source_catalog, target_catalog, options.tables);
  std::vector<KeyProbe> probes = key_probes(draft, source_catalog);
  apply_repeated_keys(draft, source_catalog, target_catalog, probes, source.repeated_keys(probes));
  draft.source_url = src.url;
  draft.source_sqlite = options.sqlite_path.empty() ? "" : sqlite_path_in_config(options.sqlite_path, options.output);
  draft.target_url = tgt.url;
  InitResult out;
  if (src.had_password) {
    draft.source_password_env = kSourcePasswordEnv;
    out.messages.push_back(std::string("the source URL's password is not written to the file: set ") +
                           kSourcePasswordEnv + " before running check or sync");
  }
  if (tgt.had_password) {
    draft.target_password_env = kTargetPasswordEnv;
    out.messages.push_back(std::string("the target URL's password is not written to the file: set ") +
                           kTargetPasswordEnv + " before running check or sync");
  }
  size_t synced = 0, guessed = 0, left = 0;
  for (const auto& t : draft.tables) {
    if (!t.enabled) {
      ++left;
      if (!t.match_how.empty()) {
        out.messages.push_back("table " + t.name + " -> " + t.target + ": " + t.match_how +
                               " (written commented out: uncomment it if that is right)");
      }
      continue;
    }
    ++synced;
    if (!t.match_how.empty()) {
      ++guessed;
      out.messages.push_back("table " + t.name + " -> " + t.target + ": " + t.match_how);
    }
  }
  out.messages.push_back(std::to_string(synced) + " table(s) to sync (" + std::to_string(guessed) +
                         " matched by a guessed rename), " + std::to_string(left) + " left commented out, " +
                         std::to_string(draft.unmatched_targets.size()) + " target table(s) without a source");
  out.yaml = write_yaml(draft);
  return out;
}

InitResult run_init(const InitOptions& options) {
  if (!options.sqlite_path.empty() && !options.source_url.empty()) {
    throw config::ConfigError({"init takes --source URL or --sqlite PATH, not both"});
  }
  if (options.sqlite_path.empty() && options.source_url.empty()) {
    throw config::ConfigError({"init needs --source URL (or --sqlite PATH)"});
  }
  // Checked before connecting: a connection string that cannot be written safely is refused first.
  if (!options.sqlite_path.empty()) {
    without_password(options.target_url, "target");
    return init_from_sqlite(options);
  }
  without_password(options.source_url, "source");
  without_password(options.target_url, "target");
  pg::Connection source(pg::Endpoint{options.source_url, "", "stagesync init"});
  pg::Connection target(pg::Endpoint{options.target_url, "", "stagesync init"});
  PostgresCatalogReader source_reader(source);
  PostgresCatalogReader target_reader(target);
  return write_config(source_reader, target_reader, options);
}

}  // namespace stagesync::init
