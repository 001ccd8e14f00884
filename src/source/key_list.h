// What a record of the source's own changes says about one table for a run:
// a PostgreSQL desktop's logical decoding (`follow`, `capture: logical`)
// names the keys of every row a batch of committed transactions inserted,
// updated or deleted. A run given a KeyList per table reads only those keys'
// rows, and deletes the listed keys the source no longer has in scope,
// instead of reconciling the whole key set (delta::Method::Logical).
//
// The list is a promise the caller makes: between the table's last
// successful run and the run's snapshot, no row of the table changed whose
// key (old or new) is not listed. Where a change does not say which keys it
// touched (a TRUNCATE, a delete whose old key the WAL does not carry, too
// many keys), the table is `whole`: its incremental method is chosen as
// without a list. A source may always ignore a list and read more.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stagesync::source {

struct KeyList {
  enum class Kind {
    untouched,  // the record names no change of the table or of a table its lookups read
    listed,     // exactly the keys in `columns`
    whole,      // no list: `why` says why
  };
  Kind kind = Kind::untouched;
  std::string why;
  // (Also `listed` when only a lookup's table changed: no key of its own.)
  // The run whose source state the list starts from: a table whose last
  // successful run on the target is another one is read as without a list.
  std::string since_run;
  // listed: per key column of the table (plan order), the keys' values as
  // the source prints them (text), position i of every column one key.
  std::vector<std::vector<std::string>> columns;
  // listed: per lookup of the table (plan order), the match values of the
  // rows the record names in the lookup's table (new and old), columnar as
  // `columns` (per match column): the table's rows holding them are read
  // too (their looked-up value may differ now). Empty: none for that lookup.
  std::vector<std::vector<std::vector<std::string>>> lookup_matches;
  // listed: rows the record inserted minus rows it deleted (whatever the
  // table's scope; a TRUNCATE makes the list `whole`). With the last run's
  // row count, the table's row count now, without counting.
  int64_t row_change = 0;

  size_t size() const { return columns.empty() ? 0 : columns.front().size(); }
};

// Index-aligned with the run's plan::SyncPlan::tables.
using KeyLists = std::vector<KeyList>;

}  // namespace stagesync::source
