// The keys a follow batch's decoded desktop transactions name, per table of
// the batch's plan (source::KeyList; decision 0012, "Batches read by key").
//
// A table's list holds the key of every row a transaction inserted, the new
// and the old key of every row it updated, and the key of every row it
// deleted, each once. Where the WAL does not say which key a change touched,
// the table is read as without a list (`whole`), and the reason is given:
//   - a TRUNCATE;
//   - a delete, or an update, whose old row the WAL does not carry (the
//     table's replica identity is the default without a primary key, or
//     NOTHING; decision 0011's opt-in `follow: { replica_identity: full }`
//     makes it carry one), or whose old row lacks a key column;
//   - an update without an old row where the configured key is not within
//     the primary key / replica identity index (the key may have changed);
//   - a key column the WAL does not carry (an unchanged TOASTed value), or NULL;
//   - a change in a table one of its lookups reads whose old match values
//     the WAL does not carry (a change there that does lists its match
//     values: the table's rows holding them are read again; an update that
//     kept the match and take columns, shown by a whole old row, lists none);
//   - more than `limit` keys in one batch (memory stays bounded; reading
//     the table whole is then about as cheap).
// Changes of tables the plan does not read are ignored. Nothing here is an
// error: a change it cannot list makes the batch read more, never less.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "logical/replica_identity.h"
#include "logical/transaction.h"
#include "plan/sync_plan.h"
#include "source/key_list.h"

namespace stagesync::follow {

class ChangedKeys {
 public:
  // `identities`: logical::read_identities() of the plan's source tables;
  // `since_run`: the run the first transaction added follows (KeyList::since_run).
  ChangedKeys(const plan::SyncPlan& plan, const std::vector<logical::TableIdentity>& identities, std::string since_run,
              size_t limit = 50000);

  void add(const logical::Transaction& transaction);
  void add(const logical::Change& change);

  // One KeyList per plan table.
  source::KeyLists lists() const;

  // The source tables of `plan` and of its lookups, for read_identities().
  static std::vector<logical::Relation> relations(const plan::SyncPlan& plan);

 private:
  struct Table {
    const plan::TablePlan* plan = nullptr;
    bool key_within_identity = false;         // an update without an old row kept the configured key
    std::vector<bool> match_within_identity;  // per lookup: the same, for its table's match columns
    std::vector<bool> lookup_full_row;        // per lookup: its table's old rows are whole (REPLICA IDENTITY FULL)
    source::KeyList list;
    std::set<std::vector<std::string>> keys;
    std::vector<std::set<std::vector<std::string>>> matches;  // per lookup
    size_t listed() const;
  };
  void lookup_changed(Table& t, size_t lookup, const logical::Change& c);
  // Values of `columns` in the new row or the old one; false when one is not carried, or NULL.
  static bool values_of(const logical::Change& c, const std::vector<std::string>& columns, bool old,
                        std::vector<std::string>& out);
  // Whether an update with a whole old row (REPLICA IDENTITY FULL) left `columns` as they were. Values are
  // compared as the WAL's text: a value written differently counts as changed (the rows are read again).
  static bool kept(const logical::Change& c, const std::vector<std::string>& columns);
  void whole(Table& t, std::string why);
  // The configured key of the new row (old = false) or of the old row; false (and `whole`) when it is not carried.
  bool key_of(Table& t, const logical::Change& c, bool old, std::vector<std::string>& key);
  void list(Table& t, std::vector<std::string> key);

  std::string since_run_;
  size_t limit_;
  std::vector<Table> tables_;  // by plan index
  using Name = std::pair<std::string, std::string>;
  std::map<Name, std::vector<size_t>> read_by_;                       // a source table -> the plan tables reading it
  std::map<Name, std::vector<std::pair<size_t, size_t>>> looked_up_;  // a lookup's table -> (plan table, lookup)
};

}  // namespace stagesync::follow
