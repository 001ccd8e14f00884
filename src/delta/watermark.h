// Where the last run's view of the source ended, in the source's own terms.
//
// A watermark is the transaction snapshot the run read the source in: `xmin`
// (every transaction below it had finished: its rows were visible or will
// never be) and `xmax` (the first transaction id not yet assigned), 64-bit
// with epoch. It comes from the source server's transaction counter, never
// from a clock, so a long transaction, a late commit, a NULL or skewed
// timestamp cannot hide a row from the next run: every row version the last
// run could not see was written by a transaction with id >= its `xmin`.
// See docs/incremental.md for the argument in full.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>


namespace stagesync::delta {

struct Watermark {
  int64_t xmin = 0;
  int64_t xmax = 0;
  std::string source;  // identity of the source database (see source_identity())
  // Row counts of the tables a table's lookups read, in this snapshot: with
  // no row version in the change window, an unchanged count proves that no
  // lookup row was deleted either.
  std::map<std::string, int64_t> lookup_rows;
  // In-scope source rows in this snapshot (count(*) with the scope), or -1.
  // With no row version in the change window, an equal count proves the
  // table did not change at all (a delete alone lowers it).
  int64_t rows = -1;
  // The run whose rejects for this table are still the current ones (a run
  // that found nothing changed keeps the earlier run's).
  std::string rejects_run;
  // duplicates: { keep: newest } tables: whether, in this snapshot, two
  // in-scope source rows of one key had the same `by` value as the target
  // stores it (1), none did (0), or not known (-1). Where none did, deleting
  // a key's newest row lowers the key's greatest `by`, which the next run's
  // key digests compare (docs/incremental.md, "duplicates: keep newest").
  int64_t ties = -1;
  // Not stored: the 32-bit transaction id age() measures from in the
  // transaction that took this snapshot (-1: unknown). Window conditions
  // written with age() are twice as fast as comparing ids converted to text.
  int64_t age_base = -1;
  // The statistics' count of rows inserted, updated and deleted in the
  // source table when this snapshot was read (-1: not known). Never proof of
  // anything (statistics lag, are reset after a crash, count rolled-back
  // writes): only a guess whether the table changed, which picks the cheaper
  // of two correct ways to find out (PostgresSource::choose()).
  int64_t writes = -1;
};

std::string to_json(const Watermark& w, const std::string& method);
// nullopt when `json` is empty or not a watermark of this format.
std::optional<Watermark> from_json(const std::string& json);

// The condition on the source table's `alias` selecting every row version
// written by a transaction that `since` could not see, as seen from `now`
// (it also selects some rows `since` did see; reading them again is
// harmless). nullopt with `why` when `since` cannot be used: another source,
// a transaction counter that went backwards (restored or replaced source), or
// a watermark so old that 32-bit transaction ids may have wrapped.
std::optional<std::string> changed_since(const Watermark& since, const Watermark& now, std::string& why,
                                         const std::string& alias = "t");

}  // namespace stagesync::delta
