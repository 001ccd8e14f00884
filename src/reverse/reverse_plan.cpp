#include "reverse/reverse_plan.h"

#include <algorithm>
#include <set>

#include "pg/sql.h"

namespace stagesync::reverse {
namespace {

const config::Table* forward_table_for(const config::Config& cfg, const config::Reverse& r) {
  for (const auto& t : cfg.tables) {
    std::string target = t.target.empty() ? t.name : t.target;
    if (target == r.name) return &t;
  }
  return nullptr;
}

const std::string* lookup(const std::vector<std::pair<std::string, std::string>>& pairs, const std::string& key) {
  for (const auto& [k, v] : pairs)
    if (k == key) return &v;
  return nullptr;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// "timestamptz" out of base_type's quoted "pg_catalog"."timestamptz".
std::string bare(const std::string& base_type) {
  auto dot = base_type.rfind("\".\"");
  std::string name = dot == std::string::npos ? base_type : base_type.substr(dot + 2);
  if (!name.empty() && name.front() == '"') name.erase(name.begin());
  if (!name.empty() && name.back() == '"') name.pop_back();
  return name;
}

// Date/time pairs a plain cast converts without losing anything (a timestamp
// with time zone becomes the desktop session's local time: source.timezone).
bool lossless_datetime(const catalog::Column& from, const catalog::Column& to) {
  std::string f = bare(from.base_type), t = bare(to.base_type);
  return (f == "timestamptz" && t == "timestamp") || (f == "timestamp" && t == "timestamptz") ||
         (f == "date" && (t == "timestamp" || t == "timestamptz"));
}

// The desktop type without modifier (varchar, numeric): its limits are checked separately first.
std::string cast_type(const catalog::Column& c) { return c.base_type; }  // already qualified and quoted

}  // namespace

std::string EntryPlan::cloud_key(const std::string& alias) const {
  std::vector<std::string> parts;
  for (const auto& k : key) parts.push_back(alias + "." + pg::ident(k) + "::text");
  return "ARRAY[" + pg::join(parts, ", ") + "]";
}

std::string EntryPlan::desktop_key_array(const std::string& alias) const {
  std::vector<std::string> parts;
  for (const auto& k : desktop_key) parts.push_back(alias + "." + pg::ident(k) + "::text");
  return "ARRAY[" + pg::join(parts, ", ") + "]";
}

std::string EntryPlan::mobile_hash(const std::string& alias) const {
  std::vector<std::string> cols;
  for (const auto& c : staged) cols.push_back(c.name);
  return "pg_catalog.md5(ROW(" + pg::column_list(cols, alias) + ", NULL)::text)";
}

std::string EntryPlan::desktop_hash(const std::string& alias) const {
  std::vector<std::string> cols;
  for (const auto& w : writes) cols.push_back(w.column.name);
  return "pg_catalog.md5(ROW(" + pg::column_list(cols, alias) + ", NULL)::text)";
}

std::vector<std::string> cloud_tables(const config::Config& cfg) {
  std::vector<std::string> out;
  for (const auto& r : cfg.reverse) out.push_back(r.name);
  return out;
}

std::vector<std::string> desktop_tables(const config::Config& cfg) {
  std::vector<std::string> out;
  for (const auto& r : cfg.reverse) out.push_back(r.into);
  return out;
}

ReversePlan resolve(const config::Config& cfg, const catalog::Tables& clouds, const catalog::Tables& desktops,
                    const std::vector<std::string>& selected) {
  ReversePlan plan;
  auto& problems = plan.problems;
  for (const auto& name : selected) {
    bool known = std::any_of(cfg.reverse.begin(), cfg.reverse.end(),
                             [&](const config::Reverse& r) { return r.name == name || r.into == name; });
    if (!known) problems.push_back("--tables: '" + name + "' is no reverse entry (cloud or desktop name)");
  }
  std::set<std::string> ids;
  for (const auto& r : cfg.reverse) {
    if (!selected.empty() && !contains(selected, r.name) && !contains(selected, r.into)) continue;
    std::string where = r.at.str() + ": reverse " + r.name + " -> " + r.into + ": ";
    EntryPlan e;
    e.config = &r;
    e.id = r.name + " -> " + r.into;
    if (!ids.insert(e.id).second) problems.push_back(where + "listed twice");
    const auto& cloud = clouds.at(r.name);
    const auto& desktop = desktops.at(r.into);
    if (!cloud) problems.push_back(where + "the target has no table '" + r.name + "'");
    if (!desktop) problems.push_back(where + "the source (desktop) has no table '" + r.into + "'");
    if (!cloud || !desktop) continue;
    e.cloud = *cloud;
    e.desktop = *desktop;
    size_t before = problems.size();
    auto cloud_has = [&](const std::string& c, const std::string& what) {
      if (e.cloud.find(c)) return true;
      problems.push_back(where + what + " '" + c + "' is no column of target table " + e.cloud.display_name());
      return false;
    };
    auto desktop_has = [&](const std::string& c, const std::string& what) {
      if (e.desktop.find(c)) return true;
      problems.push_back(where + what + " '" + c + "' is no column of desktop table " + e.desktop.display_name());
      return false;
    };
    for (const auto& s : r.skip) cloud_has(s, "skip:");
    for (const auto& [c, d] : r.columns) {
      cloud_has(c, "columns:");
      desktop_has(d, "columns: " + c + " ->");
    }
    for (const auto& [d, v] : r.set) desktop_has(d, "set:");
    for (const auto& [d, v] : r.convert) desktop_has(d, "convert:");
    if (r.key.empty()) problems.push_back(where + "key: name the columns that identify a row on both sides");
    // Which rows: the owner column's value, or all rows but the forward sync's own.
    const config::Table* fwd = forward_table_for(cfg, r);
    const config::Owner& owner = fwd ? cfg.owner_of(*fwd) : cfg.owner;
    const config::Scope& scope = fwd ? cfg.scope_of(*fwd) : cfg.scope;
    std::vector<std::string> filter;
    if (r.rows != "all") {
      if (owner.none) {
        problems.push_back(where + "rows: { owner: " + r.rows +
                           " } needs an owner column (`owner:` globally or on the forward table " + r.name + ")");
      } else if (cloud_has(owner.column, "the owner column")) {
        filter.push_back("t." + pg::ident(owner.column) + "::text = " + pg::text_literal(r.rows));
        e.rows_text = owner.column + " = '" + r.rows + "'";
      }
    } else if (!owner.none && e.cloud.find(owner.column)) {
      // `all` never takes the forward sync's own rows down (SPEC 1.5, round trip).
      filter.push_back("t." + pg::ident(owner.column) + "::text IS DISTINCT FROM " + pg::text_literal(owner.value));
      e.rows_text = "all rows but " + owner.column + " = '" + owner.value + "'";
    } else {
      e.rows_text = "all rows";
    }
    for (const auto& [col, value] : scope.equals) {
      if (!cloud_has(col, "scope column")) continue;
      filter.push_back("t." + pg::ident(col) + "::text = " + pg::text_literal(value));
      e.rows_text += ", " + col + " = " + value;
    }
    e.rows_filter = filter.empty() ? "true" : pg::join(filter, " AND ");

    // Staged: every cloud column not skipped. Mapped: renamed, else same name.
    std::set<std::string> written;
    for (const auto& c : e.cloud.columns) {
      if (contains(r.skip, c.name)) continue;
      if (!c.builtin_type) {
        problems.push_back(where + "cloud column " + c.name + " has type " + c.type +
                           ", which the desktop may not have; skip it or convert it");
        continue;
      }
      e.staged.push_back(c);
    }
    for (const auto& c : e.staged) {
      const std::string* renamed = lookup(r.columns, c.name);
      std::string dname = renamed ? *renamed : c.name;
      if (lookup(r.set, dname) || lookup(r.convert, dname)) continue;  // given its value another way
      const catalog::Column* d = e.desktop.find(dname);
      if (!d) {
        if (!renamed) {
          problems.push_back(where + "cloud column " + c.name + " has no desktop column of that name in " +
                             e.desktop.display_name() + "; skip it, rename it (columns:) or convert it");
        }
        continue;
      }
      if (!written.insert(dname).second) {
        problems.push_back(where + "desktop column " + dname + " is written twice");
        continue;
      }
      DesktopWrite w;
      w.column = *d;
      w.origin = "cloud column " + c.name;
      w.raw = "s." + pg::ident(c.name);
      if (c.type == d->type || (c.base_type == d->base_type && d->max_length > 0)) {
        w.value = w.raw + "::" + cast_type(*d);
      } else if (lossless_datetime(c, *d)) {
        w.value = w.raw + "::" + cast_type(*d);
      } else if (c.category == 'D' || d->category == 'D') {
        problems.push_back(where + "cloud column " + c.name + " (" + c.type + ") cannot become desktop column " +
                           dname + " (" + d->type + ") without a declared conversion: convert: { " + dname +
                           ": \"SQL expression over the cloud columns\" }");
        continue;
      } else {
        w.value = w.raw + "::text::" + cast_type(*d);
        w.check_input = true;
      }
      e.writes.push_back(std::move(w));
    }
    // A conversion or a constant: an SQL value read as text, checked against the desktop column's type.
    auto declared = [&](const std::string& how, const std::string& dname, const std::string& raw) {
      const catalog::Column* d = e.desktop.find(dname);
      if (!d || !written.insert(dname).second) return;
      DesktopWrite w;
      w.column = *d;
      w.origin = how + " " + dname;
      w.raw = raw;
      w.value = w.raw + "::text::" + cast_type(*d);
      w.check_input = true;
      e.writes.push_back(std::move(w));
    };
    for (const auto& [dname, expr] : r.convert) declared("convert", dname, "(" + expr + ")");
    for (const auto& [dname, constant] : r.set) declared("set", dname, pg::text_literal(constant));
    // Desktop column order: the bookkeeping's desktop hash must not depend on the config's order.
    std::sort(e.writes.begin(), e.writes.end(), [&](const DesktopWrite& a, const DesktopWrite& b) {
      auto pos = [&](const std::string& n) {
        for (size_t i = 0; i < e.desktop.columns.size(); ++i)
          if (e.desktop.columns[i].name == n) return i;
        return e.desktop.columns.size();
      };
      return pos(a.column.name) < pos(b.column.name);
    });
    for (const auto& k : r.key) {
      if (!cloud_has(k, "key column")) continue;
      if (contains(r.skip, k)) problems.push_back(where + "key column " + k + " is skipped");
      const std::string* renamed = lookup(r.columns, k);
      std::string dname = renamed ? *renamed : k;
      if (lookup(r.set, dname) || lookup(r.convert, dname) || !e.desktop.find(dname)) {
        problems.push_back(where + "key column " + k + " must be copied as it is into a desktop column (desktop " +
                           dname + ")");
        continue;
      }
      e.key.push_back(k);
      e.desktop_key.push_back(dname);
    }
    if (e.writes.empty()) problems.push_back(where + "no desktop column would be written");
    if (problems.size() != before) continue;
    std::string f = "reverse " + e.id + ": rows " + e.rows_text + ", key (" + pg::join(e.key, ", ") + "), " +
                    std::to_string(e.writes.size()) + " desktop column(s) written, deletes " + r.deletes +
                    ", conflicts " + r.conflicts;
    for (const auto& w : e.writes) {
      if (w.origin.rfind("convert", 0) == 0) f += "; " + w.column.name + " = " + w.raw;
    }
    plan.facts.push_back(f);
    plan.entries.push_back(std::move(e));
  }
  return plan;
}

}  // namespace stagesync::reverse
