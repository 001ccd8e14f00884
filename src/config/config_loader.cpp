// YAML -> Config, with every problem reported as FILE:LINE.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "config/config.h"

namespace stagesync::config {
namespace {

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// Walks the document, collecting problems instead of stopping at the first.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  Location at(const YAML::Node& n) const { return Location{file_, n.Mark().line + 1}; }
  void problem(const YAML::Node& n, const std::string& what) { problems_.push_back(at(n).str() + ": " + what); }
  std::vector<std::string>& problems() { return problems_; }

  // Reports keys of `map` that are not in `allowed`. False when `map` is not a map.
  bool expect_map(const YAML::Node& map, const std::string& what, const std::set<std::string>& allowed) {
    if (!map.IsMap()) {
      problem(map, what + " must be a mapping");
      return false;
    }
    for (const auto& kv : map) {
      std::string key = kv.first.Scalar();
      if (!allowed.count(key)) {
        std::vector<std::string> names(allowed.begin(), allowed.end());
        problem(kv.first, "unknown key '" + key + "' in " + what + " (expected one of: " + join(names, ", ") + ")");
      }
    }
    return true;
  }

  bool scalar(const YAML::Node& map, const char* key, const std::string& what, std::string& out, bool required) {
    YAML::Node n = map[key];
    if (!n) {
      if (required) problem(map, "missing required key '" + std::string(key) + "' in " + what);
      return false;
    }
    if (!n.IsScalar()) {
      problem(n, "'" + std::string(key) + "' in " + what + " must be a single value");
      return false;
    }
    out = n.Scalar();
    return true;
  }

  // `capture:` of an `incremental:` block: "snapshot" or "logical" ("" when absent).
  std::string capture(const YAML::Node& map, const std::string& what) {
    std::string value;
    if (scalar(map, "capture", what, value, false) && value != "snapshot" && value != "logical") {
      problem(map["capture"], "incremental capture must be 'snapshot' or 'logical', not '" + value + "'");
      value.clear();
    }
    return value;
  }

  // A list of names; a single scalar is accepted as a one-element list.
  std::vector<std::string> names(const YAML::Node& map, const char* key, const std::string& what) {
    std::vector<std::string> out;
    YAML::Node n = map[key];
    if (!n) return out;
    if (n.IsScalar()) {
      out.push_back(n.Scalar());
    } else if (n.IsSequence()) {
      for (const auto& item : n) {
        if (item.IsScalar() && !item.Scalar().empty()) {
          out.push_back(item.Scalar());
        } else {
          problem(item, "'" + std::string(key) + "' in " + what + " must list column names");
        }
      }
    } else {
      problem(n, "'" + std::string(key) + "' in " + what + " must be a list of names");
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> pairs(const YAML::Node& n, const std::string& what) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!n.IsMap()) {
      problem(n, what + " must be a mapping of column: value");
      return out;
    }
    for (const auto& kv : n) {
      if (!kv.second.IsScalar()) {
        problem(kv.second, "value of '" + kv.first.Scalar() + "' in " + what + " must be a single value");
        continue;
      }
      out.emplace_back(kv.first.Scalar(), kv.second.Scalar());
    }
    return out;
  }

  Endpoint endpoint(const YAML::Node& n, const std::string& what, bool is_source) {
    Endpoint e;
    std::set<std::string> allowed = {"url", "password_env"};
    if (is_source) { allowed.insert("sqlite"); allowed.insert("timezone"); }
    else allowed.insert("environment");
    if (!expect_map(n, what, allowed)) return e;
    scalar(n, "url", what, e.url, false);
    if (scalar(n, "password_env", what, e.password_env, false)) e.password_env_at = at(n["password_env"]);
    if (is_source) {
      scalar(n, "sqlite", what, e.sqlite, false);
      scalar(n, "timezone", what, e.timezone, false);
      if (e.url.empty() && e.sqlite.empty()) problem(n, what + " needs 'url' (PostgreSQL) or 'sqlite' (a file)");
      if (!e.url.empty() && !e.sqlite.empty()) problem(n, what + " has both 'url' and 'sqlite'; choose one");
    } else {
      scalar(n, "url", what, e.url, true);
      if (scalar(n, "environment", what, e.environment, false) && e.environment != "production" &&
          e.environment != "development") {
        problem(n["environment"], "target environment must be 'production' or 'development', not '" + e.environment + "'");
      }
    }
    return e;
  }

  Owner owner(const YAML::Node& n, const std::string& what) {
    Owner o;
    if (n.IsScalar() && n.Scalar() == "none") return o;
    if (!expect_map(n, what + " owner", {"column", "value"})) return o;
    o.none = false;
    scalar(n, "column", what + " owner", o.column, true);
    scalar(n, "value", what + " owner", o.value, true);
    return o;
  }

  Scope scope(const YAML::Node& n, const std::string& what) {
    Scope s;
    if (n.IsScalar() && n.Scalar() == "none") return s;
    s.equals = pairs(n, what + " scope");
    return s;
  }

  Reference reference(const YAML::Node& n, const std::string& table) {
    Reference r;
    std::string what = "a reference of table '" + table + "'";
    r.at = at(n);
    if (!expect_map(n, what, {"columns", "parent", "parent_columns", "on_orphan"})) return r;
    if (!n["columns"]) problem(n, "missing required key 'columns' in " + what);
    r.columns = names(n, "columns", what);
    scalar(n, "parent", what, r.parent, true);
    r.parent_columns = names(n, "parent_columns", what);
    std::string policy = "keep";
    scalar(n, "on_orphan", what, policy, false);
    if (policy == "keep") r.on_orphan = OrphanPolicy::Keep;
    else if (policy == "skip") r.on_orphan = OrphanPolicy::Skip;
    else if (policy == "fail") r.on_orphan = OrphanPolicy::Fail;
    else problem(n["on_orphan"], "on_orphan must be keep, skip or fail, not '" + policy + "'");
    if (!r.parent_columns.empty() && r.parent_columns.size() != r.columns.size()) {
      problem(n, what + ": 'columns' and 'parent_columns' must have the same length");
    }
    return r;
  }

  Lookup lookup(const YAML::Node& n, const std::string& table) {
    Lookup l;
    std::string what = "a lookup of table '" + table + "'";
    l.at = at(n);
    if (!expect_map(n, what, {"column", "from", "match", "take"})) return l;
    scalar(n, "column", what, l.column, true);
    scalar(n, "from", what, l.from, true);
    if (!n["match"]) problem(n, "missing required key 'match' in " + what);
    l.match = names(n, "match", what);
    scalar(n, "take", what, l.take, true);
    return l;
  }

  Table table(const YAML::Node& n) {
    Table t;
    t.at = at(n);
    std::string what = "a table entry";
    if (!expect_map(n, what, {"name", "target", "key", "skip", "generated", "set", "lookups", "references",
                              "duplicates", "incremental", "owner", "scope", "compare_ignore", "guards"})) {
      return t;
    }
    scalar(n, "name", what, t.name, true);
    what = "table '" + t.name + "'";
    t.target = t.name;
    scalar(n, "target", what, t.target, false);
    YAML::Node key = n["key"];
    if (!key) {
      problem(n, "missing required key 'key' in " + what + " (list the key columns, or write 'key: none')");
    } else if (key.IsScalar() && key.Scalar() == "none") {
      t.key_none = true;
    } else {
      t.key = names(n, "key", what);
      if (t.key.empty()) problem(key, "'key' in " + what + " is empty (write 'key: none' for a table without a key)");
    }
    t.skip = names(n, "skip", what);
    t.generated = names(n, "generated", what);
    t.compare_ignore = names(n, "compare_ignore", what);
    if (n["set"]) t.set = pairs(n["set"], what + " set");
    if (YAML::Node l = n["lookups"]) {
      if (!l.IsSequence()) problem(l, "'lookups' in " + what + " must be a list");
      else for (const auto& item : l) t.lookups.push_back(lookup(item, t.name));
    }
    if (YAML::Node r = n["references"]) {
      if (!r.IsSequence()) problem(r, "'references' in " + what + " must be a list");
      else for (const auto& item : r) t.references.push_back(reference(item, t.name));
    }
    if (YAML::Node d = n["duplicates"]) {
      if (d.IsScalar() && d.Scalar() == "fail") {
        t.duplicates.keep_newest = false;
      } else if (expect_map(d, what + " duplicates", {"keep", "by"})) {
        std::string keep;
        scalar(d, "keep", what + " duplicates", keep, true);
        if (keep == "newest") {
          t.duplicates.keep_newest = true;
          scalar(d, "by", what + " duplicates", t.duplicates.by, true);
        } else if (!keep.empty() && keep != "fail") {
          problem(d["keep"], "duplicates keep must be 'newest' (or write 'duplicates: fail'), not '" + keep + "'");
        }
      }
    }
    if (YAML::Node inc = n["incremental"]) {
      if (expect_map(inc, what + " incremental", {"cursor", "method", "capture"})) {
        scalar(inc, "cursor", what + " incremental", t.incremental.cursor, false);
        t.incremental.capture = capture(inc, what + " incremental");
        if (scalar(inc, "method", what + " incremental", t.incremental.method, false) &&
            t.incremental.method != "cursor" && t.incremental.method != "fingerprint") {
          problem(inc["method"], "incremental method must be 'cursor' or 'fingerprint'");
        }
      }
    }
    if (YAML::Node g = n["guards"]) t.guards = guards(g, what + " guards");
    if (YAML::Node o = n["owner"]) t.owner = owner(o, what);
    if (YAML::Node s = n["scope"]) t.scope = scope(s, what);
    return t;
  }

  std::optional<double> fraction(const YAML::Node& map, const char* key, const std::string& what) {
    std::string text;
    if (!scalar(map, key, what, text, false)) return std::nullopt;
    try {
      size_t used = 0;
      double v = std::stod(text, &used);
      if (used == text.size() && v >= 0 && v <= 1) return v;
    } catch (const std::exception&) {
    }
    problem(map[key], "'" + std::string(key) + "' in " + what + " must be a number from 0 to 1, not '" + text + "'");
    return std::nullopt;
  }

  Guards guards(const YAML::Node& n, const std::string& what) {
    Guards g;
    if (!expect_map(n, what, {"max_delete_fraction", "min_deletes", "max_shrink_fraction", "allow_empty"})) return g;
    g.max_delete_fraction = fraction(n, "max_delete_fraction", what);
    g.max_shrink_fraction = fraction(n, "max_shrink_fraction", what);
    std::string text;
    if (scalar(n, "min_deletes", what, text, false)) {
      try {
        size_t used = 0;
        long long v = std::stoll(text, &used);
        if (used != text.size() || v < 0) throw std::invalid_argument(text);
        g.min_deletes = v;
      } catch (const std::exception&) {
        problem(n["min_deletes"], "'min_deletes' in " + what + " must be a whole number >= 0, not '" + text + "'");
      }
    }
    if (scalar(n, "allow_empty", what, text, false)) {
      if (text == "true" || text == "false") g.allow_empty = text == "true";
      else problem(n["allow_empty"], "'allow_empty' in " + what + " must be true or false");
    }
    return g;
  }

  // `text` as a whole number from `lo` to `hi`; nullopt when it is not one.
  static std::optional<int> whole_number(const std::string& text, int lo, int hi) {
    try {
      size_t used = 0;
      int v = std::stoi(text, &used);
      if (used == text.size() && v >= lo && v <= hi) return v;
    } catch (const std::exception&) {
    }
    return std::nullopt;
  }

  Retry retry(const YAML::Node& n) {
    Retry r;
    const std::string what = "retry";
    if (!expect_map(n, what, {"attempts", "max_seconds", "initial_delay"})) return r;
    std::string text;
    if (scalar(n, "attempts", what, text, false)) {
      if (auto v = whole_number(text, 1, 100)) {
        r.attempts = *v;
      } else {
        problem(n["attempts"], "retry attempts must be a whole number from 1 to 100, not '" + text + "'");
      }
    }
    for (auto [key, field] : {std::pair<const char*, double*>{"max_seconds", &r.max_seconds},
                              std::pair<const char*, double*>{"initial_delay", &r.initial_delay}}) {
      if (!scalar(n, key, what, text, false)) continue;
      try {
        size_t used = 0;
        double v = std::stod(text, &used);
        if (used != text.size() || v < 0) throw std::invalid_argument(text);
        *field = v;
      } catch (const std::exception&) {
        problem(n[key], "retry " + std::string(key) + " must be a number of seconds >= 0, not '" + text + "'");
      }
    }
    return r;
  }

  History history(const YAML::Node& n) {
    History h;
    if (!expect_map(n, "history", {"keep_days"})) return h;
    std::string text;
    if (!scalar(n, "keep_days", "history", text, false)) return h;
    if (auto v = whole_number(text, 0, 36500)) {
      h.keep_days = *v;
    } else {
      problem(n["keep_days"],
              "history keep_days must be a whole number of days from 0 (keep every run record) to 36500, not '" + text +
                  "'");
    }
    return h;
  }

  // follow: { max_retained_wal: 1GB, interval: 1, replica_identity: default | full }
  Follow follow(const YAML::Node& n) {
    Follow f;
    f.present = true;
    const std::string what = "follow";
    if (!expect_map(n, what, {"max_retained_wal", "interval", "replica_identity"})) return f;
    std::string text;
    if (scalar(n, "max_retained_wal", what, text, false)) {
      try {
        size_t used = 0;
        double v = std::stod(text, &used);
        std::string unit = text.substr(used);
        while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
        double scale = unit.empty() || unit == "B" ? 1
                       : unit == "kB" || unit == "KB" ? 1024.0
                       : unit == "MB" ? 1024.0 * 1024
                       : unit == "GB" ? 1024.0 * 1024 * 1024
                       : unit == "TB" ? 1024.0 * 1024 * 1024 * 1024
                                      : -1;
        if (used == 0 || scale < 0 || v <= 0) throw std::invalid_argument(text);
        f.max_retained_wal = static_cast<int64_t>(v * scale);
      } catch (const std::exception&) {
        problem(n["max_retained_wal"], "follow max_retained_wal must be a size such as 1GB, 512MB or 100kB, not '" +
                                           text + "'");
      }
    }
    if (scalar(n, "interval", what, text, false)) {
      try {
        size_t used = 0;
        double v = std::stod(text, &used);
        if (used != text.size() || v <= 0) throw std::invalid_argument(text);
        f.interval = v;
      } catch (const std::exception&) {
        problem(n["interval"], "follow interval must be a number of seconds > 0, not '" + text + "'");
      }
    }
    if (scalar(n, "replica_identity", what, text, false)) {
      if (text == "default" || text == "full") f.replica_identity = text;
      else problem(n["replica_identity"], "follow replica_identity must be default or full, not '" + text + "'");
    }
    return f;
  }

  Reverse reverse(const YAML::Node& n) {
    Reverse r;
    r.at = at(n);
    std::string what = "a reverse entry";
    if (!expect_map(n, what, {"name", "into", "key", "rows", "columns", "deletes", "conflicts", "skip", "set", "convert"})) return r;
    scalar(n, "name", what, r.name, true);
    r.into = r.name;
    scalar(n, "into", what, r.into, false);
    if (!n["key"]) problem(n, "missing required key 'key' in " + what);
    r.key = names(n, "key", what);
    r.rows = "all";
    if (YAML::Node rows = n["rows"]) {
      if (rows.IsScalar()) r.rows = rows.Scalar();
      else if (expect_map(rows, what + " rows", {"owner"})) scalar(rows, "owner", what + " rows", r.rows, true);
    }
    if (n["columns"]) r.columns = pairs(n["columns"], what + " columns");
    if (n["skip"]) r.skip = names(n, "skip", what);
    if (n["set"]) r.set = pairs(n["set"], what + " set");
    if (n["convert"]) r.convert = pairs(n["convert"], what + " convert");
    scalar(n, "deletes", what, r.deletes, false);
    if (r.deletes != "keep" && r.deletes != "propagate") {
      problem(n["deletes"], "'deletes' in " + what + " must be keep or propagate, not '" + r.deletes + "'");
    }
    scalar(n, "conflicts", what, r.conflicts, false);
    if (r.conflicts != "mobile-wins" && r.conflicts != "desktop-wins" && r.conflicts != "fail") {
      problem(n["conflicts"],
              "'conflicts' in " + what + " must be mobile-wins, desktop-wins or fail, not '" + r.conflicts + "'");
    }
    return r;
  }

 private:
  std::string file_;
  std::vector<std::string> problems_;
};

}  // namespace

ConfigError::ConfigError(std::vector<std::string> problems)
    : std::runtime_error(problems.size() == 1 ? problems[0]
                                              : std::to_string(problems.size()) + " problems in the configuration:\n  " + join(problems, "\n  ")),
      problems_(std::move(problems)) {}

Config parse_config(const std::string& yaml_text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError({file + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg});
  }
  Reader rd(file);
  Config c;
  c.path = file;
  if (!root.IsMap()) throw ConfigError({file + ":1: the configuration must be a mapping with source, target and tables"});
  rd.expect_map(root, "the configuration",
                {"source", "target", "owner", "scope", "tables", "reverse", "guards", "retry", "history", "follow",
                 "incremental"});
  if (YAML::Node inc = root["incremental"]) {
    if (rd.expect_map(inc, "the global incremental", {"capture"})) c.capture = rd.capture(inc, "the global incremental");
  }
  if (root["retry"]) c.retry = rd.retry(root["retry"]);
  if (root["history"]) c.history = rd.history(root["history"]);
  if (root["follow"]) c.follow = rd.follow(root["follow"]);
  if (root["guards"]) c.guards = rd.guards(root["guards"], "the global guards");
  if (root["source"]) c.source = rd.endpoint(root["source"], "source", true);
  else rd.problem(root, "missing required key 'source'");
  if (root["target"]) c.target = rd.endpoint(root["target"], "target", false);
  else rd.problem(root, "missing required key 'target'");
  if (root["owner"]) c.owner = rd.owner(root["owner"], "the global");
  if (root["scope"]) c.scope = rd.scope(root["scope"], "the global");
  YAML::Node tables = root["tables"];
  if (!tables) {
    rd.problem(root, "missing required key 'tables'");
  } else if (!tables.IsSequence()) {
    rd.problem(tables, "'tables' must be a list of table entries");
  } else {
    std::set<std::string> seen_names, seen_targets;
    for (const auto& item : tables) {
      Table t = rd.table(item);
      if (!t.name.empty() && !seen_names.insert(t.name).second) rd.problem(item, "table '" + t.name + "' is listed twice");
      if (!t.target.empty() && !seen_targets.insert(t.target).second && t.target != t.name) {
        rd.problem(item, "target table '" + t.target + "' is the target of two entries");
      }
      c.tables.push_back(std::move(t));
    }
  }
  if (YAML::Node rev = root["reverse"]) {
    if (!rev.IsSequence()) rd.problem(rev, "'reverse' must be a list");
    else for (const auto& item : rev) c.reverse.push_back(rd.reverse(item));
  }
  if (!rd.problems().empty()) throw ConfigError(std::move(rd.problems()));
  return c;
}

std::string beside(const std::string& config_path, const std::string& suffix) {
  std::string base = config_path;
  for (const std::string ext : {".yaml", ".yml"}) {
    if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0) {
      base.resize(base.size() - ext.size());
      break;
    }
  }
  return base + suffix;
}

Config load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError({path + ": cannot read the configuration file"});
  std::stringstream ss;
  ss << in.rdbuf();
  Config cfg = parse_config(ss.str(), path);
  // A relative SQLite path is the configuration's neighbour, whatever the
  // directory a scheduler starts stagesync in.
  std::filesystem::path file(cfg.source.sqlite);
  if (!cfg.source.sqlite.empty() && file.is_relative()) {
    cfg.source.sqlite = (std::filesystem::path(path).parent_path() / file).lexically_normal().string();
  }
  return cfg;
}

}  // namespace stagesync::config
