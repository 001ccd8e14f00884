// The configuration a user writes (SPEC section 4), as plain data.
//
// load_config() is the only producer. Every field here was present and of the
// right type in the file, or holds the documented default. Whether names in it
// exist in the databases is checked later, by plan::resolve().
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace stagesync::config {

struct Location {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  std::string str() const { return file + ":" + std::to_string(line); }
};

struct Endpoint {
  std::string url;           // libpq URI or key=value conninfo
  std::string password_env;  // optional: environment variable holding the password
  Location password_env_at;  // where password_env is written (for messages)
  std::string sqlite;        // source only: path to a SQLite file instead of url
  std::string environment = "production";  // target only: production | development
  std::string timezone;      // source only: zone of `timestamp without time zone` values
};

// `owner: { column: source, value: D }`, or `owner: none`.
struct Owner {
  bool none = true;
  std::string column;
  std::string value;
};

// `scope: { org_id: 3 }`, or `scope: none`.
struct Scope {
  std::vector<std::pair<std::string, std::string>> equals;  // column -> value
  bool empty() const { return equals.empty(); }
};

enum class OrphanPolicy { Keep, Skip, Fail };

struct Reference {
  std::vector<std::string> columns;         // in this (child) table, source names
  std::string parent;                       // source table name of the parent
  std::vector<std::string> parent_columns;  // empty: the parent's key
  OrphanPolicy on_orphan = OrphanPolicy::Keep;
  Location at;
};

struct Lookup {
  std::string column;               // target column to fill
  std::string from;                 // source table to read
  std::vector<std::string> match;   // columns equal in this table and in `from`
  std::string take;                 // column of `from` whose value is taken
  Location at;
};

struct Duplicates {
  bool keep_newest = false;  // false: duplicate keys fail the run
  std::string by;            // column deciding "newest" when keep_newest
};

struct Incremental {
  std::string cursor;  // change column; empty: default rule
  std::string method;  // "", "cursor" or "fingerprint"
  // Where `sync --mode incremental` and `run` learn what changed: "" (the
  // global setting), "snapshot" (the source's state compared with the
  // target's: transaction ids, key digests, fingerprints) or "logical" (the
  // desktop's logical decoding, read through `follow`'s slot: decision 0012).
  std::string capture;
};

// Mass-change protection (a source that only looks empty). Unset fields
// inherit: table -> global -> built-in default (see guard/mass_change.h).
struct Guards {
  std::optional<double> max_delete_fraction;  // of the owned in-scope rows
  std::optional<int64_t> min_deletes;         // deletions up to this many never trip the fraction guard
  std::optional<double> max_shrink_fraction;  // source rows lost since the last successful run
  std::optional<bool> allow_empty;            // let a table's owned rows go to zero
};

// Retries of transient faults (lost connections, server restarts,
// serialization failures, deadlocks, lock timeouts): the whole run starts
// again from a clean state after a jittered exponential backoff.
struct Retry {
  int attempts = 5;             // total tries, including the first
  double max_seconds = 600;     // no new attempt starts after this much time since the first
  double initial_delay = 1.0;   // seconds; doubles each time (capped at 60), +/- 50% jitter
};

// history: { keep_days: 30 }: how long the run records in the target
// (stagesync.runs, table_runs, rejects) are kept. A follower writes one per
// batch, so without a limit they grow for as long as it runs. 0: kept forever.
struct History {
  int keep_days = 30;
};

struct Table {
  std::string name;    // source table
  std::string target;  // target table (defaults to name)
  bool key_none = false;
  std::vector<std::string> key;
  std::vector<std::string> skip;
  std::vector<std::string> generated;
  std::vector<std::pair<std::string, std::string>> set;  // constant target columns
  std::vector<Lookup> lookups;
  std::vector<Reference> references;
  std::vector<std::string> compare_ignore;
  Duplicates duplicates;
  Incremental incremental;
  Guards guards;
  std::optional<Owner> owner;  // per-table override of the global owner
  std::optional<Scope> scope;  // per-table override of the global scope
  Location at;
};

struct Reverse {
  std::string name;  // target table
  std::string into;  // source table
  std::vector<std::string> key;
  std::string rows;  // owner value, or "all"
  std::vector<std::pair<std::string, std::string>> columns;  // renames: cloud name -> desktop name
  std::string deletes = "keep";                              // keep | propagate
  std::string conflicts = "mobile-wins";                     // mobile-wins | desktop-wins | fail
  std::vector<std::string> skip;                             // cloud columns not copied
  std::vector<std::pair<std::string, std::string>> set;      // desktop column -> constant
  // desktop column -> SQL expression over the staged cloud columns (cloud
  // names), evaluated on the desktop: `{ timefrom: "date + timefrom" }`.
  std::vector<std::pair<std::string, std::string>> convert;
  Location at;
};

// `follow:` (stagesync follow, decision 0012).
struct Follow {
  bool present = false;                          // the block is in the file: follow is intended
  int64_t max_retained_wal = int64_t{1} << 30;   // bytes the slot may hold on the desktop's disk
  double interval = 1.0;                         // seconds between batches at most
  std::string replica_identity = "default";      // default | full (applied only by follow --apply-replica-identity)
};

struct Config {
  std::string path;
  Endpoint source;
  Endpoint target;
  Owner owner;
  Scope scope;
  std::vector<Table> tables;
  std::vector<Reverse> reverse;
  Guards guards;
  Retry retry;
  History history;
  Follow follow;
  std::string capture;  // top-level `incremental: { capture: }`: "", "snapshot" or "logical"

  // Whether table `t`'s changes are read from the desktop's logical decoding (its capture, else the global one).
  bool captures_logically(const Table& t) const {
    return (t.incremental.capture.empty() ? capture : t.incremental.capture) == "logical";
  }
  // The effective owner and scope of a table (override, else global).
  const Owner& owner_of(const Table& t) const { return t.owner ? *t.owner : owner; }
  const Scope& scope_of(const Table& t) const { return t.scope ? *t.scope : scope; }
};

// Thrown when the file cannot be read or is not a valid configuration. The
// message lists every problem found, each as "FILE:LINE: what is wrong".
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

Config load_config(const std::string& path);
Config parse_config(const std::string& yaml_text, const std::string& name_for_messages);

// Checks what the configuration needs from the environment: every variable a
// `password_env` names (source and target) is set. Throws ConfigError naming
// each missing variable and the side that names it. The command line calls it
// once, after loading and before any connection is opened, for every command.
// An empty value is not an error (it is passed to libpq as the password).
void check_environment(const Config& cfg);

// A file of stagesync's own next to the configuration at `config_path`:
// the path without its .yaml/.yml extension, then `suffix` (".state.json").
std::string beside(const std::string& config_path, const std::string& suffix);

}  // namespace stagesync::config
