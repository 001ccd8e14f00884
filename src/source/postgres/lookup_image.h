// Rows whose stored lookup value is no longer the source's, found with the
// stored image of each lookup (decision 0017).
//
// A lookup fills a column from another source table. When that table changed
// since the last run (rows inserted, updated, deleted: deletions leave no row
// version to find), the rows of this table that depend on the change did not
// change themselves, so the change window does not contain them.
//
// The target keeps, per lookup, an image of what the lookup gave as of the
// table's last successful run: each match value and a hash of (match values,
// taken value). The source digests its current lookup per bucket of those
// hashes while the target digests the image (reconcile.h's machinery); only
// the differing buckets' pairs cross, and the target rows whose match value
// is in a differing pair (new, changed or gone) are read again. The image is
// then brought up to date by difference in the transaction that records the
// table's run, so a crash leaves the old image with the old rows.
//
// Without a usable image (none yet, of another run than the table's last,
// of another configuration or text settings) the source's whole current
// lookup is copied to the target, every target row whose stored value
// differs from it is read again, and the copy becomes the image. Whether an
// image is usable is known before the digests, from its header as the run
// began (read with the table's state, no round trip of its own): neither
// side digests a lookup whose image will not be used.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pg/connection.h"
#include "plan/sync_plan.h"
#include "source/postgres/buckets.h"
#include "source/postgres/reconcile.h"
#include "state/lookup_images.h"

namespace stagesync::source::postgres {

class LookupImages : public ReconcileExtra {
 public:
  using Header = std::pair<std::string, std::string>;  // an image's (signature, run_id)
  struct Run {
    std::string run_id;
    size_t index = 0;                                 // the table's plan index (names the work tables)
    std::string previous_run;                         // the table's last successful run, or empty
    std::map<int, Header> headers;                    // the table's images as the run began, by lookup position
    TextSettings settings;                            // the source's text settings the hashes depend on
    std::map<std::string, int64_t> lookup_rows;       // rows of the lookups' tables, by qualified name
    std::vector<std::string>* created = nullptr;      // receives the work tables created
    std::vector<state::Statement>* record = nullptr;  // receives the image's writes (TableRun::record_sql)
    std::string* reason = nullptr;                    // the table's method reason: told how each lookup was compared
  };
  // Requires delta::lookups_comparable(table).
  LookupImages(const plan::TablePlan& table, pg::Connection& source, pg::Connection& target, Run run);

  void defer_target() override;
  void source() override;
  std::vector<stage::CopyChain::Copy> copies() override;
  std::vector<std::string> also_fetch() override { return fetch_; }

 private:
  struct Lookup {
    int position = 0;  // in the table's lookups
    const plan::StagedColumn* filled = nullptr;
    Buckets buckets{64};
    std::optional<Header> header;  // as the run began (Run::headers)
    bool usable = false;           // the header is of the table's last run, with today's signature
    std::optional<Header> now;     // usable: the header again, in the reconciliation's transaction
    BucketDigests ours, theirs;
  };
  // The lookup's pairs on the source: typed match values m0.., their texts
  // mt, the taken value v, and the pair's hash h (alias z).
  std::string pairs(const Lookup& l) const;
  std::string signature(const Lookup& l) const;

  const plan::TablePlan& table_;
  pg::Connection& source_;
  pg::Connection& target_;
  Run run_;
  std::string settings_;  // Run::settings, as the signature names them
  std::vector<Lookup> lookups_;
  std::vector<std::string> fetch_;
};

}  // namespace stagesync::source::postgres
