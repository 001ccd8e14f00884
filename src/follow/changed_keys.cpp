#include "follow/changed_keys.h"

#include <algorithm>
#include <optional>

namespace stagesync::follow {
namespace {

std::string display(const logical::Relation& r) { return r.schema + "." + r.name; }

// `relation`'s entry of read_identities() (nullptr: not read).
const logical::TableIdentity* identity_of(const std::vector<logical::TableIdentity>& identities,
                                          const catalog::TableSchema& relation) {
  for (const auto& id : identities)
    if (id.relation.schema == relation.schema && id.relation.name == relation.name) return &id;
  return nullptr;
}

// Whether `relation`'s updates and deletes carry the whole old row (a column missing there is NULL).
bool full_row(const std::vector<logical::TableIdentity>& identities, const catalog::TableSchema& relation) {
  const logical::TableIdentity* id = identity_of(identities, relation);
  return id && id->old_row == logical::OldRow::full_row;
}

// Whether an update of `relation` that carries no old row kept `columns`:
// they are within its primary key or replica identity index.
bool within_identity(const std::vector<logical::TableIdentity>& identities, const catalog::TableSchema& relation,
                     const std::vector<std::string>& columns) {
  const logical::TableIdentity* id = identity_of(identities, relation);
  return id && (id->old_row == logical::OldRow::primary_key || id->old_row == logical::OldRow::index) &&
         !columns.empty() && std::all_of(columns.begin(), columns.end(), [&](const std::string& k) {
           return std::find(id->key_columns.begin(), id->key_columns.end(), k) != id->key_columns.end();
         });
}

}  // namespace

size_t ChangedKeys::Table::listed() const {
  size_t n = keys.size();
  for (const auto& m : matches) n += m.size();
  return n;
}

ChangedKeys::ChangedKeys(const plan::SyncPlan& plan, const std::vector<logical::TableIdentity>& identities,
                         std::string since_run, size_t limit)
    : since_run_(std::move(since_run)), limit_(limit), tables_(plan.tables.size()) {
  for (size_t i = 0; i < plan.tables.size(); ++i) {
    const plan::TablePlan& p = plan.tables[i];
    Table& t = tables_[i];
    t.plan = &p;
    t.key_within_identity = within_identity(identities, p.source, p.key);
    t.matches.resize(p.lookups.size());
    read_by_[{p.source.schema, p.source.name}].push_back(i);
    for (size_t l = 0; l < p.lookups.size(); ++l) {
      looked_up_[{p.lookups[l].from.schema, p.lookups[l].from.name}].push_back({i, l});
      t.match_within_identity.push_back(within_identity(identities, p.lookups[l].from, p.lookups[l].match));
      t.lookup_full_row.push_back(full_row(identities, p.lookups[l].from));
    }
  }
}

std::vector<logical::Relation> ChangedKeys::relations(const plan::SyncPlan& plan) {
  std::vector<logical::Relation> out;
  for (const auto& p : plan.tables) {
    out.push_back({p.source.schema, p.source.name});
    for (const auto& l : p.lookups) out.push_back({l.from.schema, l.from.name});
  }
  return out;
}

void ChangedKeys::add(const logical::Transaction& transaction) {
  auto reader = transaction.changes.reader();
  logical::Change c;
  while (reader.next(c)) add(c);
}

void ChangedKeys::whole(Table& t, std::string why) {
  if (t.list.kind == source::KeyList::Kind::whole) return;
  t.list.kind = source::KeyList::Kind::whole;
  t.list.why = std::move(why);
  t.keys.clear();
  for (auto& m : t.matches) m.clear();
}

bool ChangedKeys::values_of(const logical::Change& c, const std::vector<std::string>& columns, bool old,
                            std::vector<std::string>& out) {
  out.clear();
  for (const auto& k : columns) {
    const logical::ColumnValue* v = c.find(k, old);
    if (!old && std::find(c.unchanged_toast.begin(), c.unchanged_toast.end(), k) != c.unchanged_toast.end())
      v = nullptr;
    if (!v || !v->value) return false;
    out.push_back(*v->value);
  }
  return true;
}

bool ChangedKeys::kept(const logical::Change& c, const std::vector<std::string>& columns) {
  for (const auto& k : columns) {
    if (std::find(c.unchanged_toast.begin(), c.unchanged_toast.end(), k) != c.unchanged_toast.end()) continue;
    const logical::ColumnValue* now = c.find(k, false);
    if (!now) return false;  // (not carried: assume it changed)
    const logical::ColumnValue* before = c.find(k, true);
    std::optional<std::string> was = before ? before->value : std::nullopt;  // (missing from a whole old row: NULL)
    if (now->value != was) return false;
  }
  return true;
}

bool ChangedKeys::key_of(Table& t, const logical::Change& c, bool old, std::vector<std::string>& key) {
  if (values_of(c, t.plan->key, old, key)) return true;
  whole(t, std::string("an ") + logical::to_string(c.kind) + " of " + display(c.relation) + " whose " +
               (old ? "old" : "new") + " row's key the WAL does not carry, or carries as NULL");
  return false;
}

void ChangedKeys::list(Table& t, std::vector<std::string> key) {
  if (t.list.kind == source::KeyList::Kind::whole) return;
  t.list.kind = source::KeyList::Kind::listed;
  t.keys.insert(std::move(key));
  if (t.listed() > limit_) whole(t, "more than " + std::to_string(limit_) + " keys changed in one batch");
}

void ChangedKeys::lookup_changed(Table& t, size_t lookup, const logical::Change& c) {
  if (t.list.kind == source::KeyList::Kind::whole) return;
  const std::vector<std::string>& match = t.plan->lookups[lookup].match;
  auto note = [&](bool old) {
    // (A NULL match value matches no row of the table: nothing to read again.)
    std::vector<std::string> values;
    if (values_of(c, match, old, values)) t.matches[lookup].insert(std::move(values));
  };
  bool has_old = !c.old_key.empty();
  // An old row that may lack a match column (an identity index without it)
  // does not say which rows held the old value.
  if (has_old && !t.match_within_identity[lookup] && !t.lookup_full_row[lookup]) {
    return whole(t, "an " + std::string(logical::to_string(c.kind)) + " of its lookup's table " + display(c.relation) +
                        " whose old row in the WAL does not carry the match columns");
  }
  switch (c.kind) {
    case logical::ChangeKind::truncate:
      return whole(t, "a TRUNCATE of its lookup's table " + display(c.relation));
    case logical::ChangeKind::insert:
      note(false);
      break;
    case logical::ChangeKind::update:
      if (!has_old && !t.match_within_identity[lookup]) {
        return whole(t, "an update of its lookup's table " + display(c.relation) +
                            " without its old row in the WAL (the match columns may have changed)");
      }
      // A lookup's value is read from its table's match and take columns
      // only: an update that kept both (the whole old row says so) changes
      // no looked-up value, and no row is read again for it.
      if (has_old && t.lookup_full_row[lookup] && kept(c, match) && kept(c, {t.plan->lookups[lookup].take})) return;
      note(false);
      if (has_old) note(true);
      break;
    case logical::ChangeKind::remove:
      if (!has_old) {
        return whole(t, "a delete from its lookup's table " + display(c.relation) +
                            " without its old row in the WAL (see `follow: { replica_identity: full }`)");
      }
      note(true);
      break;
  }
  t.list.kind = source::KeyList::Kind::listed;
  if (t.listed() > limit_) whole(t, "more than " + std::to_string(limit_) + " keys changed in one batch");
}

void ChangedKeys::add(const logical::Change& c) {
  Name name{c.relation.schema, c.relation.name};
  if (auto it = looked_up_.find(name); it != looked_up_.end()) {
    for (auto [i, l] : it->second) lookup_changed(tables_[i], l, c);
  }
  auto it = read_by_.find(name);
  if (it == read_by_.end()) return;
  for (size_t i : it->second) {
    Table& t = tables_[i];
    if (t.list.kind == source::KeyList::Kind::whole) continue;
    if (!t.plan->keyed()) {
      whole(t, "key: none");
      continue;
    }
    std::vector<std::string> key;
    switch (c.kind) {
      case logical::ChangeKind::truncate:
        whole(t, "a TRUNCATE of " + display(c.relation));
        break;
      case logical::ChangeKind::insert:
        ++t.list.row_change;
        if (key_of(t, c, false, key)) list(t, std::move(key));
        break;
      case logical::ChangeKind::update:
        if (!key_of(t, c, false, key)) break;
        list(t, std::move(key));
        if (!c.old_key.empty()) {
          if (key_of(t, c, true, key)) list(t, std::move(key));
        } else if (!t.key_within_identity) {
          whole(t, "an update of " + display(c.relation) +
                       " without its old row in the WAL (its replica identity does not cover the key, so the key "
                       "may have changed)");
        }
        break;
      case logical::ChangeKind::remove:
        --t.list.row_change;
        if (c.old_key.empty()) {
          whole(t, "a delete from " + display(c.relation) +
                       " without its old row in the WAL (no primary key or replica identity: see `follow: { "
                       "replica_identity: full }`)");
        } else if (key_of(t, c, true, key)) {
          list(t, std::move(key));
        }
        break;
    }
  }
}

namespace {

// Tuples as columns: position i of every column one tuple.
std::vector<std::vector<std::string>> columnar(const std::set<std::vector<std::string>>& tuples, size_t width) {
  std::vector<std::vector<std::string>> out(width);
  for (const auto& tuple : tuples)
    for (size_t k = 0; k < width; ++k) out[k].push_back(tuple[k]);
  return out;
}

}  // namespace

source::KeyLists ChangedKeys::lists() const {
  source::KeyLists out;
  for (const auto& t : tables_) {
    source::KeyList l = t.list;
    l.since_run = since_run_;
    if (l.kind == source::KeyList::Kind::listed) {
      l.columns = columnar(t.keys, t.plan->key.size());
      for (size_t j = 0; j < t.matches.size(); ++j) {
        l.lookup_matches.push_back(t.matches[j].empty() ? std::vector<std::vector<std::string>>{}
                                                        : columnar(t.matches[j], t.plan->lookups[j].match.size()));
      }
    }
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace stagesync::follow
