#include "logical/test_decoding.h"

#include <charconv>

#include "logical/slot_errors.h"

namespace stagesync::logical {
namespace {

class Cursor {
 public:
  explicit Cursor(std::string_view text) : all_(text), rest_(text) {}

  bool at_end() const { return rest_.empty(); }
  bool starts_with(std::string_view s) const { return rest_.substr(0, s.size()) == s; }
  bool take(std::string_view s) {
    if (!starts_with(s)) return false;
    rest_.remove_prefix(s.size());
    return true;
  }
  void expect(std::string_view s) {
    if (!take(s)) fail("expected \"" + std::string(s) + "\"");
  }

  // A name as quote_identifier writes it: bare (a-z, 0-9, _) or "quoted".
  std::string identifier() {
    if (take("\"")) {
      std::string out;
      for (;;) {
        size_t q = rest_.find('"');
        if (q == std::string_view::npos) fail("unterminated quoted name");
        out += rest_.substr(0, q);
        rest_.remove_prefix(q + 1);
        if (!take("\"")) return out;
        out += '"';
      }
    }
    size_t n = 0;
    while (n < rest_.size() && rest_[n] != '.' && rest_[n] != ':' && rest_[n] != ',' && rest_[n] != ' ' &&
           rest_[n] != '[')
      ++n;
    if (n == 0) fail("expected a name");
    std::string out(rest_.substr(0, n));
    rest_.remove_prefix(n);
    return out;
  }

  Relation relation() {
    Relation r;
    r.schema = identifier();
    expect(".");
    r.name = identifier();
    return r;
  }

  // name[type]:value. Returns false for an unchanged TOAST value (`value`
  // is then empty).
  bool column(ColumnValue& c) {
    c.name = identifier();
    expect("[");
    size_t close = rest_.find("]:");
    if (close == std::string_view::npos) fail("expected the column's [type]:");
    c.type = std::string(rest_.substr(0, close));
    rest_.remove_prefix(close + 2);
    c.value.reset();
    if (take("'")) {
      c.value = quoted();
    } else if (take("B'")) {
      c.value = quoted();
    } else {
      size_t n = rest_.find(' ');
      std::string_view word = rest_.substr(0, n);
      rest_.remove_prefix(n == std::string_view::npos ? rest_.size() : n);
      if (word == "unchanged-toast-datum") return false;
      if (word == "null") return true;
      if (word.empty()) fail("expected a value for column " + c.name);
      if (c.type == "boolean")
        c.value = word == "true" ? "t" : "f";
      else
        c.value = std::string(word);
    }
    return true;
  }

  [[noreturn]] void fail(const std::string& what) const {
    size_t at = all_.size() - rest_.size();
    std::string shown(all_.substr(0, 200));
    throw DecodeError("cannot decode test_decoding output at character " + std::to_string(at) + " (" + what +
                      "): " + shown);
  }

  std::string_view rest() const { return rest_; }

 private:
  // The body of a '...' literal with '' for ', after its opening quote.
  std::string quoted() {
    std::string out;
    for (;;) {
      size_t q = rest_.find('\'');
      if (q == std::string_view::npos) fail("unterminated quoted value");
      out += rest_.substr(0, q);
      rest_.remove_prefix(q + 1);
      if (!take("'")) return out;
      out += '\'';
    }
  }

  std::string_view all_;
  std::string_view rest_;
};

uint32_t parse_xid(Cursor& c, std::string_view text) {
  std::string_view rest = c.rest();
  size_t n = rest.find(' ');
  std::string_view digits = rest.substr(0, n);
  uint32_t xid = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), xid);
  if (ec != std::errc() || p != digits.data() + digits.size())
    c.fail("expected a transaction id in " + std::string(text));
  c.take(digits);
  return xid;
}

// Columns up to the end or to " new-tuple:" (a column of that name would be
// quoted, so the bare word is the marker).
void columns(Cursor& c, Change& change, std::vector<ColumnValue>& into) {
  // Room for every column left on the line (each has one "]:"; a value holding one only makes this larger):
  // growing the vector column by column was most of a batch's decoding time (a reallocation and move per
  // doubling, for each of tens of thousands of changes).
  size_t columns_left = 0;
  for (size_t at = c.rest().find("]:"); at != std::string_view::npos; at = c.rest().find("]:", at + 2)) ++columns_left;
  into.reserve(columns_left);
  while (c.take(" ")) {
    if (c.starts_with("new-tuple:")) return;
    ColumnValue v;
    if (c.column(v))
      into.push_back(std::move(v));
    else
      change.unchanged_toast.push_back(v.name);
  }
  if (!c.at_end()) c.fail("expected a space before the next column");
}

ChangeMessage parse_change(Cursor& c) {
  std::vector<Relation> relations{c.relation()};
  while (c.take(", ")) relations.push_back(c.relation());
  c.expect(": ");
  ChangeMessage msg;
  if (c.take("TRUNCATE:")) {  // " (no-flags)" or " restart_seqs" / " cascade": not needed to apply
    for (auto& r : relations) msg.changes.push_back(Change{ChangeKind::truncate, std::move(r), {}, {}, false, {}});
    return msg;
  }
  if (relations.size() != 1) c.fail("several tables in one row change");
  Change ch;
  ch.relation = std::move(relations[0]);
  if (c.take("INSERT:")) {
    ch.kind = ChangeKind::insert;
    if (!c.take(" (no-tuple-data)")) columns(c, ch, ch.new_values);
  } else if (c.take("UPDATE:")) {
    ch.kind = ChangeKind::update;
    if (c.take(" old-key:")) {
      columns(c, ch, ch.old_key);
      ch.unchanged_toast.clear();  // an old key never holds unchanged values
      c.expect("new-tuple:");
    } else {
      ch.no_old_key = true;
    }
    if (!c.take(" (no-tuple-data)")) columns(c, ch, ch.new_values);
  } else if (c.take("DELETE:")) {
    ch.kind = ChangeKind::remove;
    if (c.take(" (no-tuple-data)"))
      ch.no_old_key = true;
    else
      columns(c, ch, ch.old_key);
  } else {
    c.fail("unknown change kind");
  }
  if (!c.at_end()) c.fail("unexpected text after the change");
  msg.changes.push_back(std::move(ch));
  return msg;
}

}  // namespace

PluginOptions test_decoding_options() {
  return {{"include-xids", "1"}, {"include-timestamp", "1"}, {"skip-empty-xacts", "1"}};
}

DecodedMessage parse_test_decoding(std::string_view line) {
  Cursor c(line);
  if (c.take("BEGIN ")) {
    BeginMessage b{parse_xid(c, line)};
    return b;
  }
  if (c.take("COMMIT ")) {
    CommitMessage m;
    m.xid = parse_xid(c, line);
    if (c.take(" (at ")) {
      std::string_view rest = c.rest();
      if (rest.empty() || rest.back() != ')') c.fail("unterminated commit time");
      m.commit_time = std::string(rest.substr(0, rest.size() - 1));
    }
    return m;
  }
  if (c.take("table ")) return parse_change(c);
  if (c.starts_with("message:")) return OtherMessage{};
  c.fail("unknown message");
}

}  // namespace stagesync::logical
