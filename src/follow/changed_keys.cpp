#include "follow/changed_keys.h"

#include <algorithm>

namespace stagesync::follow {
namespace {

std::string display(const logical::Relation& r) { return r.schema + "." + r.name; }

}  // namespace

ChangedKeys::ChangedKeys(const plan::SyncPlan& plan, const std::vector<logical::TableIdentity>& identities,
                         std::string since_run, size_t limit)
    : since_run_(std::move(since_run)), limit_(limit), tables_(plan.tables.size()) {
  for (size_t i = 0; i < plan.tables.size(); ++i) {
    const plan::TablePlan& p = plan.tables[i];
    Table& t = tables_[i];
    t.plan = &p;
    read_by_[{p.source.schema, p.source.name}].push_back(i);
    for (const auto& l : p.lookups) looked_up_[{l.from.schema, l.from.name}].push_back(i);
    for (const auto& id : identities) {
      if (id.relation.schema != p.source.schema || id.relation.name != p.source.name) continue;
      t.key_within_identity =
          (id.old_row == logical::OldRow::primary_key || id.old_row == logical::OldRow::index) && !p.key.empty() &&
          std::all_of(p.key.begin(), p.key.end(), [&](const std::string& k) {
            return std::find(id.key_columns.begin(), id.key_columns.end(), k) != id.key_columns.end();
          });
    }
  }
}

std::vector<logical::Relation> ChangedKeys::relations(const plan::SyncPlan& plan) {
  std::vector<logical::Relation> out;
  for (const auto& p : plan.tables) out.push_back({p.source.schema, p.source.name});
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
}

bool ChangedKeys::key_of(Table& t, const logical::Change& c, bool old, std::vector<std::string>& key) {
  key.clear();
  for (const auto& k : t.plan->key) {
    const logical::ColumnValue* v = c.find(k, old);
    if (!old && std::find(c.unchanged_toast.begin(), c.unchanged_toast.end(), k) != c.unchanged_toast.end()) v = nullptr;
    if (!v || !v->value) {
      whole(t, std::string("an ") + logical::to_string(c.kind) + " of " + display(c.relation) + " whose " +
                   (old ? "old" : "new") + " row's key column " + k + " the WAL does not carry, or carries as NULL");
      return false;
    }
    key.push_back(*v->value);
  }
  return true;
}

void ChangedKeys::list(Table& t, std::vector<std::string> key) {
  if (t.list.kind == source::KeyList::Kind::whole) return;
  t.list.kind = source::KeyList::Kind::listed;
  t.keys.insert(std::move(key));
  if (t.keys.size() > limit_) whole(t, "more than " + std::to_string(limit_) + " keys changed in one batch");
}

void ChangedKeys::add(const logical::Change& c) {
  Name name{c.relation.schema, c.relation.name};
  if (auto it = looked_up_.find(name); it != looked_up_.end()) {
    for (size_t i : it->second) whole(tables_[i], "its lookup's table " + display(c.relation) + " changed");
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

source::KeyLists ChangedKeys::lists() const {
  source::KeyLists out;
  for (const auto& t : tables_) {
    source::KeyList l = t.list;
    l.since_run = since_run_;
    if (l.kind == source::KeyList::Kind::listed) {
      l.columns.assign(t.plan->key.size(), {});
      for (const auto& key : t.keys)
        for (size_t k = 0; k < key.size(); ++k) l.columns[k].push_back(key[k]);
    }
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace stagesync::follow
