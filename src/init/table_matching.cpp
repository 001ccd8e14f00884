#include "init/table_matching.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <tuple>

#include "pg/sql.h"

namespace stagesync::init {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "mb" when `longer` is `shorter` with a prefix or suffix of 1 to 4 characters (separators aside).
bool affix(const std::string& longer, const std::string& shorter, std::string& extra, bool& prefix) {
  if (shorter.size() < 3 || longer.size() <= shorter.size() || longer.size() > shorter.size() + 5) return false;
  auto strip = [](std::string s) {
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    return s;
  };
  if (longer.compare(longer.size() - shorter.size(), shorter.size(), shorter) == 0) {
    extra = longer.substr(0, longer.size() - shorter.size());
    prefix = true;
  } else if (longer.compare(0, shorter.size(), shorter) == 0) {
    extra = longer.substr(shorter.size());
    prefix = false;
  } else {
    return false;
  }
  size_t n = strip(extra).size();
  return n >= 1 && n <= 4;
}

struct Candidate {
  int tier = 0;        // 0 sure, 1 likely, 2 unsure
  double overlap = 0;  // shared columns / columns of either
  const TableEntry* source = nullptr;
  const TableEntry* target = nullptr;
  std::string how;
};

std::string percent(double f) { return std::to_string(static_cast<int>(f * 100 + 0.5)) + "%"; }

std::optional<Candidate> judge(const TableEntry& s, const TableEntry& t) {
  std::set<std::string> sc, tc;
  for (const auto& c : s.schema.columns) sc.insert(c.name);
  for (const auto& c : t.schema.columns) tc.insert(c.name);
  size_t shared = 0;
  for (const auto& c : sc) shared += tc.count(c);
  size_t either = sc.size() + tc.size() - shared;
  double overlap = either ? static_cast<double>(shared) / static_cast<double>(either) : 0;
  std::string cols = std::to_string(shared) + " of " + std::to_string(sc.size()) + " source columns are in " + t.name +
                     " (" + percent(overlap) + " of the columns of either)";
  std::string ls = lower(s.name), lt = lower(t.name), extra;
  bool prefix = false;
  bool named = affix(ls, lt, extra, prefix) || affix(lt, ls, extra, prefix);
  Candidate c{0, overlap, &s, &t, ""};
  if (named) {
    std::string rule =
        "'" + s.name + "' and '" + t.name + "' differ by the " + (prefix ? "prefix" : "suffix") + " '" + extra + "'";
    if (overlap >= 0.5) {
      c.how = "guessed, sure: " + rule + " and " + cols;
      return c;
    }
    if (overlap >= 0.2) {
      c.tier = 2;
      c.how = "guessed, unsure: " + rule + ", but only " + cols;
      return c;
    }
    return std::nullopt;
  }
  if (overlap >= 0.8 && shared >= 3) {
    c.tier = 1;
    c.how = "guessed, likely: the names differ, but " + cols;
    return c;
  }
  return std::nullopt;
}

}  // namespace

Matching match_tables(const DatabaseCatalog& source, const DatabaseCatalog& target) {
  Matching m;
  std::set<const TableEntry*> used_source, used_target;
  auto pair = [&](const TableEntry& s, const TableEntry& t, bool guessed, std::string how, bool sure = true) {
    m.pairs.push_back(TableMatch{&s, &t, guessed, sure, std::move(how)});
    used_source.insert(&s);
    used_target.insert(&t);
  };
  for (const auto& s : source.tables)
    if (const TableEntry* t = target.find(s.name)) pair(s, *t, false, "");
  for (const auto& s : source.tables) {  // the same name but for case: one candidate each way, else ambiguous
    if (used_source.count(&s)) continue;
    std::vector<const TableEntry*> same;
    for (const auto& t : target.tables)
      if (!used_target.count(&t) && lower(t.name) == lower(s.name)) same.push_back(&t);
    if (same.size() == 1) pair(s, *same[0], true, "guessed, sure: the same name but for upper/lower case");
  }
  std::vector<Candidate> candidates;
  for (const auto& s : source.tables) {
    if (used_source.count(&s)) continue;
    for (const auto& t : target.tables) {
      if (used_target.count(&t)) continue;
      if (auto c = judge(s, t)) candidates.push_back(*c);
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::make_tuple(a.tier, -a.overlap, a.source->name, a.target->name) <
           std::make_tuple(b.tier, -b.overlap, b.source->name, b.target->name);
  });
  for (const auto& c : candidates) {
    if (used_source.count(c.source) || used_target.count(c.target)) continue;
    pair(*c.source, *c.target, true, c.how, c.tier == 0);
  }
  std::sort(m.pairs.begin(), m.pairs.end(),
            [](const TableMatch& a, const TableMatch& b) { return a.source->name < b.source->name; });
  for (const auto& s : source.tables)
    if (!used_source.count(&s)) m.unmatched_source.push_back(&s);
  for (const auto& t : target.tables)
    if (!used_target.count(&t)) m.unmatched_target.push_back(&t);
  return m;
}

}  // namespace stagesync::init
