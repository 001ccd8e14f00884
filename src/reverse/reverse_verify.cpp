#include "reverse/reverse_verify.h"

#include <algorithm>

#include "pg/pipeline.h"
#include "reverse/desktop_sql.h"
#include "reverse/pending.h"
#include "reverse/reverse_plan.h"
#include "run/run_errors.h"
#include "run/session.h"
#include "pg/copy_pipe.h"

namespace stagesync::reverse {

std::vector<report::TableResult> verify_reverse(const config::Config& cfg, const std::vector<std::string>& tables,
                                                report::Reporter& out) {
  std::vector<report::TableResult> results;
  std::vector<std::string> selected;
  for (const auto& r : cfg.reverse) {
    if (tables.empty() || std::find(tables.begin(), tables.end(), r.name) != tables.end() ||
        std::find(tables.begin(), tables.end(), r.into) != tables.end()) {
      selected.push_back(r.name);
    }
  }
  if (selected.empty()) return results;
  pg::Endpoint de = run::source_endpoint(cfg);
  de.application_name = kDesktopApplicationName;
  auto desktop = run::connect_side("source", de, false);
  auto target = run::connect_side("target", run::target_endpoint(cfg), false);
  ReversePlan plan = resolve(cfg, catalog::read_tables(*target, cloud_tables(cfg)),
                             catalog::read_tables(*desktop, desktop_tables(cfg)), selected);
  if (!plan.problems.empty()) throw run::CheckFailed(plan.problems);
  bool book = target->exec("SELECT pg_catalog.to_regclass('stagesync.reverse_rows') IS NOT NULL").boolean(0, 0);
  desktop->exec("BEGIN");
  desktop->exec("CREATE TEMPORARY TABLE stagesync_verify (key text[], desktop_hash text) ON COMMIT DROP");
  for (const auto& e : plan.entries) {
    report::TableResult r;
    r.source = e.desktop.display_name();
    r.target = e.cloud.display_name();
    r.verified = true;
    std::string key = e.cloud_key("t");
    std::string id = pg::text_literal(e.id);
    int64_t not_copied = 0, copied = 0, as_written = 0;
    std::string join = book ? " LEFT JOIN stagesync.reverse_rows b ON b.entry = " + id + " AND b.key = " + key
                            : " LEFT JOIN (SELECT NULL::text[] AS key, NULL::text AS desktop_hash, NULL::text AS "
                              "mobile_hash) b ON false";
    // Collisions (bookkept without a desktop hash) are set aside, as forward's verify sets its rejects aside.
    pg::Result t = target->exec(
        "SELECT count(*), count(*) FILTER (WHERE b.key IS NULL OR (b.desktop_hash IS NOT NULL AND b.mobile_hash IS "
        "DISTINCT FROM " +
        e.mobile_hash("t") +
        ")), count(*) FILTER (WHERE b.key IS NOT NULL AND b.desktop_hash IS "
        "NULL) FROM " +
        e.cloud.qualified_name() + " t" + join + " WHERE " + e.rows_filter);
    r.target_rows = t.int64(0, 0);
    not_copied = t.int64(0, 1);
    int64_t collisions = t.int64(0, 2);
    if (book) {
      desktop->exec("TRUNCATE stagesync_verify");
      copied = pg::pipe_copy(*target,
                                "COPY (SELECT key, desktop_hash FROM stagesync.reverse_rows WHERE entry = " + id +
                                    " AND desktop_hash IS NOT NULL AND mobile_hash <> '') TO STDOUT",
                                *desktop, "COPY pg_temp.stagesync_verify FROM STDIN");
      as_written = desktop
                       ->exec("SELECT count(*) FROM (SELECT b.key FROM pg_temp.stagesync_verify b JOIN " +
                              e.desktop.qualified_name() + " d ON " + e.desktop_key_array("d") + " = b.key AND " +
                              e.desktop_hash("d") + " = b.desktop_hash GROUP BY b.key) x")
                       .int64(0, 0);
    }
    r.source_rows = as_written;
    r.matches = not_copied == 0 && as_written == copied;
    r.source_checksum = std::to_string(copied - as_written) + " copied row(s) edited or deleted on the desktop";
    r.target_checksum = std::to_string(not_copied) + " mobile row(s) not copied as they are now" +
                        (collisions ? " (" + std::to_string(collisions) + " collision(s) set aside)" : "");
    if (!r.matches) {
      out.warning("reverse " + e.id + ": " + r.target_checksum + ", " + r.source_checksum +
                  (not_copied ? " (run `stagesync reverse`)" : ""));
    }
    out.table_done(r);
    results.push_back(r);
  }
  desktop->exec("ROLLBACK");
  return results;
}

}  // namespace stagesync::reverse
