#include "reverse/forward_exclusion.h"

#include <sstream>

#include "state/reverse_book.h"

namespace stagesync::reverse {

const config::Reverse* reverse_entry_for(const config::Config& cfg, const apply::TableSql& table) {
  const plan::TablePlan& t = table.table();
  for (const auto& r : cfg.reverse) {
    if (r.name != t.target_name || r.into != t.name || r.key.empty()) continue;
    bool staged = true;
    for (const auto& k : r.key) staged = staged && t.column(k) != nullptr;
    if (staged) return &r;
  }
  return nullptr;
}

std::vector<std::string> book_statements() {
  std::vector<std::string> out;
  std::string all = state::reverse_book_ddl(), part;
  std::stringstream ss(all);
  while (std::getline(ss, part, ';')) {
    while (!part.empty() && (part.front() == '\n' || part.front() == ' ')) part.erase(part.begin());
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

void exclude_reverse_written(pg::Pipeline& p, const apply::TableSql& table, const config::Reverse& entry,
                             int64_t& dropped) {
  std::vector<std::string> parts;
  for (const auto& k : entry.key) parts.push_back("s." + pg::ident(k) + "::text");
  std::string key = "ARRAY[" + pg::join(parts, ", ") + "]";
  pg::Params params;
  std::string id = params.add(entry.name + " -> " + entry.into);
  p.add("WITH gone AS (DELETE FROM " + table.staging() +
            " s WHERE EXISTS (SELECT 1 FROM stagesync.reverse_rows b WHERE b.entry = " + id +
            " AND b.desktop_hash IS NOT NULL AND b.key = " + key +
            ") OR EXISTS (SELECT 1 FROM stagesync.reverse_pending_rows b WHERE b.entry = " + id +
            " AND b.op = 'u' AND b.desktop_hash IS NOT NULL AND b.key = " + key +
            ") RETURNING 1) "
            "SELECT count(*) FROM gone",
        params, [&dropped](pg::Result& r) { dropped = r.int64(0, 0); });
}

}  // namespace stagesync::reverse
