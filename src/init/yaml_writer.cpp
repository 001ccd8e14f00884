#include "init/yaml_writer.h"

#include <cctype>
#include <cstdio>
#include <set>

namespace stagesync::init {
namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string flow(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + yaml_scalar(items[i]);
  return out + "]";
}

// A comment at `indent`, wrapped at 118 columns between words; continuation lines are indented two more.
// Control characters (a newline in a table name) are written as \xNN: a comment never ends early.
void comment(std::string& out, const std::string& indent, const std::string& raw) {
  constexpr size_t kWidth = 118;
  std::string text;
  for (unsigned char c : raw) {
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      text += buf;
    } else {
      text += static_cast<char>(c);
    }
  }
  std::string line = indent + "# ";
  const size_t first = line.size();
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find(' ', i);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(i, end - i);
    bool empty = line.size() == first || line.back() == ' ';
    if (!empty && line.size() + 1 + word.size() > kWidth) {
      out += line + "\n";
      line = indent + "#   ";
      empty = true;
    }
    line += (empty ? "" : " ") + word;
    i = end + 1;
  }
  out += line + "\n";
}

class Writer {
 public:
  explicit Writer(const ConfigDraft& d) : d_(d) {}

  std::string run() {
    head();
    endpoints();
    if (!d_.owner_column.empty()) {
      comment(out_, "", "owner: " + d_.owner_why + ".");
      out_ += "owner: { column: " + yaml_scalar(d_.owner_column) + ", value: " + yaml_scalar(d_.owner_value) + " }\n";
    }
    if (!d_.scope_column.empty()) {
      comment(out_, "", "scope (a hint): " + d_.scope_why + ".");
      out_ += "# scope: { " + yaml_scalar(d_.scope_column) + ": <value> }\n";
    }
    bool any = false;
    for (const auto& t : d_.tables) any = any || t.enabled;
    out_ += any ? "tables:\n" : "tables: []  # no table could be matched; see the commented entries below\n";
    for (const auto& t : d_.tables) table(t);
    reverse_hints();
    if (!d_.unmatched_targets.empty()) {
      out_ += "\n# Target tables no source table feeds (not synced):\n";
      for (const auto& u : d_.unmatched_targets) out_ += "#   " + u + "\n";
    }
    return out_;
  }

 private:
  void head() {
    out_ += "# stagesync configuration written by `stagesync init` from the catalogs of\n";
    out_ += "#   source " + d_.source_where + "\n#   target " + d_.target_where + "\n";
    out_ += "# Each choice says why in a comment. Read the ones marked \"guessed\" and the hints,\n";
    out_ += "# then run `stagesync check --config FILE` and `stagesync plan --config FILE`.\n";
    for (const auto& n : d_.notes) comment(out_, "", n);
  }

  void endpoint(const char* side, const std::string& url, const std::string& env, const std::string& sqlite = "") {
    out_ +=
        std::string(side) + ":\n" + (sqlite.empty() ? "  url: " + quoted(url) : "  sqlite: " + quoted(sqlite)) + "\n";
    if (!env.empty()) {
      out_ += "  password_env: " + env + "   # the password is not kept in this file: set " + env + "\n";
    }
  }
  void endpoints() {
    endpoint("source", d_.source_url, d_.source_password_env, d_.source_sqlite);
    endpoint("target", d_.target_url, d_.target_password_env);
  }

  // Tables another writer owns, as commented `reverse:` entries (stagesync reverse brings their rows back).
  void reverse_hints() {
    bool any = false;
    for (const auto& t : d_.tables) {
      if (t.other_owner.empty() || t.target_key.empty()) continue;
      if (!any) {
        out_ += "\n";
        comment(out_, "",
                "reverse (hints, not active): the tables the other writer owns, to bring its rows back to "
                "the source with `stagesync reverse`:");
        out_ += "# reverse:\n";
        any = true;
      }
      out_ += "#   - name: " + yaml_scalar(t.target) + "\n#     into: " + yaml_scalar(t.name) +
              "\n#     key: " + flow(t.target_key) + "\n#     rows: { owner: " + yaml_scalar(t.other_owner) + " }\n";
    }
  }

  void line(const std::string& prefix, const std::string& text) { out_ += prefix + text + "\n"; }

  void table(const DraftTable& t) {
    // A commented-out table is written as it would be, every line behind "# ".
    std::string p = t.enabled ? "" : "# ";
    out_ += "\n";
    if (!t.enabled) comment(out_, "  ", "not synced: " + t.disabled_because + ".");
    line("  " + p, "- name: " + yaml_scalar(t.name));
    std::string in = "    " + p;
    if (t.target.empty()) return;
    if (t.target != t.name) {
      if (!t.match_how.empty()) comment(out_, "    ", "target: " + t.match_how + ".");
      line(in, "target: " + yaml_scalar(t.target));
    } else if (!t.match_how.empty()) {
      comment(out_, "    ", "matched: " + t.match_how + ".");
    }
    comment(out_, "    ", "key: " + t.key_why + ".");
    line(in, "key: " + (t.key.empty() ? std::string("none") : flow(t.key)));
    if (t.owner_none) {
      comment(out_, "    ", "owner: " + t.owner_why + ".");
      line(in, "owner: none");
    }
    list(in, "generated", t.generated, t.generated_why);
    list(in, "skip", t.skip, t.skip_why);
    list(in, "compare_ignore", t.compare_ignore, t.compare_ignore_why);
    if (!t.newest_by.empty()) {
      comment(out_, "    ", "duplicates: " + t.duplicates_why + ".");
      line(in, "duplicates: { keep: newest, by: " + yaml_scalar(t.newest_by) + " }");
    }
    if (!t.references.empty()) {
      line(in, "references:");
      for (const auto& r : t.references) {
        comment(out_, "      ", r.why + ".");
        std::string e = "- { columns: " + flow(r.columns) + ", parent: " + yaml_scalar(r.parent);
        if (!r.parent_columns.empty()) e += ", parent_columns: " + flow(r.parent_columns);
        line("      " + p, e + ", on_orphan: skip }");
      }
    }
    if (!t.reference_hints.empty()) {
      std::string at = t.references.empty() ? "    # " : "      # ";
      comment(out_, t.references.empty() ? "    " : "      ",
              "references (hints, not active: the target declares no foreign key for these; keep syncs orphans "
              "and counts them, skip sets them aside, fail stops the run):");
      if (t.references.empty()) line("    ", "# references:");
      for (const auto& r : t.reference_hints) {
        line(t.references.empty() ? "    #   " : "      # ", "- { columns: " + flow(r.columns) +
                                                                 ", parent: " + yaml_scalar(r.parent) +
                                                                 ", on_orphan: keep }   # " + r.why);
      }
    }
    if (!t.lookup_hints.empty()) {
      comment(out_, "    ", "lookups (hints, not active: uncomment the one that is right):");
      line("    ", "# lookups:");
      for (const auto& l : t.lookup_hints) {
        comment(out_, "    ", l.why);
        line("    ", "#   - { column: " + yaml_scalar(l.column) + ", from: " + yaml_scalar(l.from) +
                         ", match: " + flow(l.match) + ", take: " + yaml_scalar(l.take) + " }");
      }
    }
    for (const auto& n : t.notes) comment(out_, "    ", "note: " + n + ".");
  }

  void list(const std::string& in, const char* key, const std::vector<std::string>& items,
            const std::vector<std::string>& why) {
    if (items.empty()) return;
    for (const auto& w : why) comment(out_, "    ", std::string(key) + ": " + w + ".");
    line(in, std::string(key) + ": " + flow(items));
  }

  const ConfigDraft& d_;
  std::string out_;
};

}  // namespace

std::string yaml_scalar(const std::string& s) {
  static const std::set<std::string> reserved = {
      "null", "Null", "NULL", "~",  "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES",
      "no",   "No",   "NO",   "on", "On",   "ON",   "off",  "Off",   "OFF",   "y",     "Y",   "n",   "N"};
  bool plain = !s.empty() && !reserved.count(s) && (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_');
  for (char c : s) plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  return plain ? s : quoted(s);
}

std::string write_yaml(const ConfigDraft& draft) { return Writer(draft).run(); }

}  // namespace stagesync::init
