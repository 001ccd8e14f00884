// Which source table feeds which target table, for `stagesync init`.
//
// Same name first (exactly, then ignoring case). Among the tables left, a
// rename is guessed from the name (one is the other with a short prefix or
// suffix, as desktop `mbreminder` is cloud `reminder`) and from the columns
// both have; each guess says what it rests on and how sure it is (only a
// "sure" guess is synced as written: a wrong one would write one table's rows
// into another). A table
// left over on either side is reported, never forced into a pair.
#pragma once

#include <string>
#include <vector>

#include "init/catalog_reader.h"

namespace stagesync::init {

struct TableMatch {
  const TableEntry* source = nullptr;
  const TableEntry* target = nullptr;
  bool guessed = false;
  bool sure = true;  // false: a guess to confirm (init writes the entry commented out)
  std::string how;   // empty for the same name; else what the guess rests on and how sure it is
};

struct Matching {
  std::vector<TableMatch> pairs;  // by source name
  std::vector<const TableEntry*> unmatched_source;
  std::vector<const TableEntry*> unmatched_target;
};

Matching match_tables(const DatabaseCatalog& source, const DatabaseCatalog& target);

}  // namespace stagesync::init
