#include "plan/target_triggers.h"

#include <cctype>

#include "pg/sql.h"

namespace stagesync::plan {
namespace {

struct Token {
  enum Kind { Word, Quoted, Literal, Punct } kind;
  std::string text;  // Word: lower-cased; Quoted: as written between the quotes; Punct: ":=", ";", "=", ...
};

bool word_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80); }
bool word_char(char c) { return word_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$'; }

bool is_e_prefix(const std::string& s, size_t quote) {
  return quote > 0 && (s[quote - 1] == 'e' || s[quote - 1] == 'E') && (quote == 1 || !word_char(s[quote - 2]));
}

// A lexer good enough to find statements in plpgsql: comments, string
// literals and dollar quotes are skipped as a whole, so text inside them is
// never read as code.
std::vector<Token> tokens(const std::string& s) {
  std::vector<Token> out;
  size_t i = 0, n = s.size();
  while (i < n) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '-' && i + 1 < n && s[i + 1] == '-') {
      while (i < n && s[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      int depth = 0;
      do {
        if (s.compare(i, 2, "/*") == 0)
          ++depth, i += 2;
        else if (s.compare(i, 2, "*/") == 0)
          --depth, i += 2;
        else
          ++i;
      } while (i < n && depth > 0);
    } else if (c == '\'') {
      // E'...' takes backslash escapes; a standard string does not (standard_conforming_strings).
      bool escapes = !out.empty() && is_e_prefix(s, i) && out.back().kind == Token::Word && out.back().text == "e";
      if (escapes) out.pop_back();
      ++i;
      while (i < n) {
        if (escapes && s[i] == '\\' && i + 1 < n)
          i += 2;
        else if (s[i] == '\'' && i + 1 < n && s[i + 1] == '\'')
          i += 2;
        else if (s[i] == '\'')
          break;
        else
          ++i;
      }
      ++i;
      out.push_back({Token::Literal, ""});
    } else if (c == '"') {
      std::string q;
      ++i;
      while (i < n) {
        if (s[i] == '"' && i + 1 < n && s[i + 1] == '"')
          q += '"', i += 2;
        else if (s[i] == '"')
          break;
        else
          q += s[i++];
      }
      ++i;
      out.push_back({Token::Quoted, q});
    } else if (c == '$') {
      size_t j = i + 1;
      while (j < n && s[j] != '$' && word_char(s[j])) ++j;
      if (j < n && s[j] == '$') {  // a dollar quote $tag$ ... $tag$
        std::string tag = s.substr(i, j - i + 1);
        size_t end = s.find(tag, j + 1);
        i = end == std::string::npos ? n : end + tag.size();
        out.push_back({Token::Literal, ""});
      } else {  // $1: a parameter
        i = j;
        out.push_back({Token::Word, "$"});
      }
    } else if (word_start(c)) {
      size_t j = i;
      while (j < n && word_char(s[j])) ++j;
      std::string w = s.substr(i, j - i);
      for (char& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.push_back({Token::Word, w});
      i = j;
    } else if (c == ':' && i + 1 < n && s[i + 1] == '=') {
      out.push_back({Token::Punct, ":="});
      i += 2;
    } else {
      out.push_back({Token::Punct, std::string(1, c)});
      ++i;
    }
  }
  return out;
}

bool is_word(const Token& t, const char* w) { return t.kind == Token::Word && t.text == w; }
bool is_punct(const Token& t, const char* p) { return t.kind == Token::Punct && t.text == p; }

// Whether token i starts a statement: the first token, or after `;` or a
// keyword that is followed by a statement.
bool statement_start(const std::vector<Token>& t, size_t i) {
  if (i == 0) return true;
  const Token& p = t[i - 1];
  return is_punct(p, ";") || is_word(p, "begin") || is_word(p, "then") || is_word(p, "else") || is_word(p, "loop");
}

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> out;
  auto nibble = [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
  };
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<uint8_t>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  return out;
}

// tgargs: each argument followed by a NUL byte.
std::vector<std::string> trigger_args(const std::string& hex) {
  std::vector<std::string> out;
  std::string cur;
  for (uint8_t b : from_hex(hex)) {
    if (b == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(b);
    }
  }
  return out;
}

}  // namespace

std::string TargetTrigger::events() const {
  return std::string("BEFORE ") + (on_insert && on_update ? "INSERT OR UPDATE" : on_insert ? "INSERT" : "UPDATE");
}

std::vector<TriggerAssignment> plpgsql_assignments(const std::string& source, const catalog::TableSchema& table) {
  std::vector<TriggerAssignment> out;
  std::vector<Token> t = tokens(source);
  for (size_t i = 0; i + 3 < t.size(); ++i) {
    if (!is_word(t[i], "new") || !is_punct(t[i + 1], ".") || !statement_start(t, i)) continue;
    const Token& col = t[i + 2];
    if (col.kind != Token::Word && col.kind != Token::Quoted) continue;
    if (!is_punct(t[i + 3], ":=") && !is_punct(t[i + 3], "=")) continue;
    if (!table.find(col.text)) continue;
    bool row_dependent = false;
    for (size_t j = i + 4; j < t.size() && !is_punct(t[j], ";"); ++j) {
      if (is_word(t[j], "new") || is_word(t[j], "old")) row_dependent = true;
    }
    bool seen = false;
    for (auto& a : out) {
      if (a.column == col.text) {
        a.row_dependent = a.row_dependent || row_dependent;
        seen = true;
      }
    }
    if (!seen) out.push_back({col.text, row_dependent});
  }
  return out;
}

std::string read_triggers_sql() {
  // tgtype bits: 1 ROW, 2 BEFORE, 4 INSERT, 16 UPDATE. tgenabled 'O' and 'A'
  // fire in the sync's sessions (session_replication_role = origin); 'D'
  // (disabled) and 'R' (replica only) do not.
  return "SELECT n.ord, t.tgname, pn.nspname, p.proname, l.lanname, p.prosrc, (t.tgtype & 4) <> 0, "
         "       (t.tgtype & 16) <> 0, pg_catalog.encode(t.tgargs, 'hex') "
         "FROM unnest($1::text[]) WITH ORDINALITY n(name, ord) "
         "JOIN pg_catalog.pg_trigger t ON t.tgrelid = pg_catalog.to_regclass(n.name) "
         "JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
         "JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace "
         "JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
         "WHERE NOT t.tgisinternal AND t.tgenabled IN ('O', 'A') AND (t.tgtype & 3) = 3 AND (t.tgtype & 20) <> 0 "
         "ORDER BY n.ord, t.tgname";
}

std::vector<TargetTrigger> triggers_from(const pg::Result& r, const std::vector<std::string>& names,
                                         const catalog::Tables& tables) {
  std::vector<TargetTrigger> out;
  for (int i = 0; i < r.rows(); ++i) {
    TargetTrigger t;
    t.table = names.at(static_cast<size_t>(r.int64(i, 0)) - 1);
    t.name = r.text(i, 1);
    t.function = r.text(i, 2) + "." + r.text(i, 3);
    t.language = r.text(i, 4);
    t.on_insert = r.boolean(i, 6);
    t.on_update = r.boolean(i, 7);
    auto schema = tables.find(t.table);
    if (schema == tables.end() || !schema->second) continue;
    const catalog::TableSchema& table = *schema->second;
    if (t.language == "plpgsql") {
      t.assigns = plpgsql_assignments(r.text(i, 5), table);
    } else if (t.language == "c" && r.text(i, 3) == "moddatetime") {
      // contrib's spi/moddatetime (Supabase's documented updated_at trigger): its argument names the column.
      std::vector<std::string> args = trigger_args(r.text(i, 8));
      if (!args.empty() && table.find(args[0])) t.assigns.push_back({args[0], false});
    }
    t.understood = !t.assigns.empty();
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace stagesync::plan
