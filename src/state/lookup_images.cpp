#include "state/lookup_images.h"

namespace stagesync::state {

std::string image_header_sql() {
  return "SELECT signature, run_id FROM stagesync.lookup_images WHERE table_name = $1 AND lookup = $2";
}

std::string image_headers_sql() { return "SELECT table_name, lookup, signature, run_id FROM stagesync.lookup_images"; }

std::string image_rows(const std::string& alias, const std::string& table, const std::string& lookup) {
  return "stagesync.lookup_image_rows " + alias + " WHERE " + alias + ".table_name = " + table + " AND " + alias +
         ".lookup = " + lookup;
}

std::vector<Statement> replace_image(const std::string& table, int lookup, const std::string& signature,
                                     const std::string& run_id, const std::string& pairs) {
  std::vector<pg::Param> which{table, std::to_string(lookup)};
  return {
      {"DELETE FROM stagesync.lookup_image_rows WHERE table_name = $1 AND lookup = $2", which},
      {"INSERT INTO stagesync.lookup_image_rows (table_name, lookup, m, h) SELECT $1::text, $2::integer, p.mt, p.h "
       "FROM " +
           pairs + " p",
       which},
      {"INSERT INTO stagesync.lookup_images (table_name, lookup, signature, run_id) VALUES ($1, $2, $3, $4) "
       "ON CONFLICT (table_name, lookup) DO UPDATE SET signature = EXCLUDED.signature, run_id = EXCLUDED.run_id",
       {table, std::to_string(lookup), signature, run_id}},
  };
}

std::vector<Statement> update_image(const std::string& table, int lookup, const std::string& run_id,
                                    const std::string& pairs, const std::string& in_differing) {
  std::vector<pg::Param> which{table, std::to_string(lookup)};
  std::vector<Statement> out;
  if (!pairs.empty()) {
    out.push_back({"DELETE FROM " + image_rows("r", "$1", "$2") + " AND " + in_differing +
                       " AND NOT EXISTS (SELECT 1 FROM " + pairs + " p WHERE p.h = r.h)",
                   which});
    out.push_back(
        {"INSERT INTO stagesync.lookup_image_rows (table_name, lookup, m, h) SELECT $1::text, $2::integer, p.mt, p.h "
         "FROM " +
             pairs + " p WHERE NOT EXISTS (SELECT 1 FROM " + image_rows("r", "$1", "$2") + " AND r.h = p.h)",
         which});
  }
  out.push_back({"UPDATE stagesync.lookup_images SET run_id = $3 WHERE table_name = $1 AND lookup = $2",
                 {table, std::to_string(lookup), run_id}});
  return out;
}

Statement keep_images(const std::string& table, const std::string& previous_run, const std::string& run_id) {
  return {"UPDATE stagesync.lookup_images SET run_id = $3 WHERE table_name = $1 AND run_id = $2",
          {table, previous_run, run_id}};
}

}  // namespace stagesync::state
