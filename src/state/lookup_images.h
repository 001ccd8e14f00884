// The statements reading and writing the stored image of a table's lookups
// (stagesync.lookup_images, stagesync.lookup_image_rows; decision 0017).
// source::postgres::LookupImages decides which; the writes go with the
// table's record (TableRun::record_sql), in the run's own target transaction.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "pg/connection.h"

namespace stagesync::state {

using Statement = std::pair<std::string, std::vector<pg::Param>>;

// "SELECT signature, run_id" of the image of lookup $2 of table $1 (no row: none).
std::string image_header_sql();
// "SELECT table_name, lookup, signature, run_id" of every stored image: read
// with the run's table_state (run::Session::begin_run()), so a run knows
// before its digests which images it can use.
std::string image_headers_sql();
// "stagesync.lookup_image_rows <alias> WHERE <alias>.table_name = <table>
// AND <alias>.lookup = <lookup>" (`table`, `lookup`: SQL expressions, a
// literal or a parameter): the image's rows (columns m text[], h bigint), to
// follow a FROM and be extended with AND.
std::string image_rows(const std::string& alias, const std::string& table, const std::string& lookup);

// The image of lookup `lookup` of `table` becomes `pairs` (a table with
// columns mt text[] and h bigint), of run `run_id`, with `signature`.
std::vector<Statement> replace_image(const std::string& table, int lookup, const std::string& signature,
                                     const std::string& run_id, const std::string& pairs);
// The image is brought to the source's current lookup by difference: of the
// rows whose hash `in_differing` (a condition on r.h) selects, those not
// among `pairs` (that bucket's source pairs) are deleted, and the pairs it
// does not hold are inserted. Then it is the image of run `run_id`.
std::vector<Statement> update_image(const std::string& table, int lookup, const std::string& run_id,
                                    const std::string& pairs, const std::string& in_differing);
// The images of `table` of run `previous_run` are those of run `run_id` too
// (the tables its lookups read did not change in between).
Statement keep_images(const std::string& table, const std::string& previous_run, const std::string& run_id);

}  // namespace stagesync::state
