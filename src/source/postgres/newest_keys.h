// duplicates: { keep: newest } tables under the cursor method: what the key
// digests compare per key instead of the key alone.
//
// The target holds one row per key, the newest (greatest `by`, NULL oldest,
// ties broken by the row's text: apply/prepare.cpp). Deleting that row at
// the source leaves no row version and the key stays, so the key sets agree;
// but the key's greatest `by` drops, unless a row with the same `by` value
// remains. So both servers hash (key, `by` as the target stores it): the
// source its key's greatest value, the target its kept row's. Whether some
// key holds two rows with the same `by` is recorded with the watermark
// (delta::Watermark::ties); where one did, the next run uses fingerprints
// (delta::choose_method()). docs/incremental.md has every case.
#pragma once

#include <string>

#include "pg/connection.h"
#include "plan/sync_plan.h"

namespace stagesync::source::postgres {

// One row per in-scope source key (keys without NULLs): the key columns, the
// greatest `by` cast to the target column's type (named as `by`), w (some row
// of the key is in `window`, a condition on the source table, alias t; empty:
// none), tie (two rows of the key have the same such value, or both NULL) and
// n (the key's rows).
std::string newest_keys(const plan::TablePlan& table, pg::Connection& source, const std::string& window);

// "SELECT 0 or 1": whether some in-scope source key holds two rows with the
// same `by` value as the target stores it (NULLs equal): Watermark::ties.
std::string newest_ties(const plan::TablePlan& table, pg::Connection& source);

}  // namespace stagesync::source::postgres
