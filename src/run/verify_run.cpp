#include "run/verify_run.h"

#include "pg/pipeline.h"

#include <chrono>

#include "apply/prepare.h"
#include "reverse/forward_exclusion.h"

namespace stagesync::run {
namespace {

struct Checksum {
  int64_t rows = 0;
  std::string digest;
};

// Sum of 64-bit hashes of each row's text: independent of row order, and a
// multiset (a duplicated row changes it). Both sides are rendered by the same
// target session, with staged values cast to the target's column types.
Checksum checksum(pg::Connection& target, const std::string& tuple, const std::string& from_where, pg::Params& params) {
  pg::Result r = target.exec("SELECT count(*), pg_catalog.left(pg_catalog.md5(coalesce(sum(pg_catalog.hashtextextended(" +
                                 tuple + "::text, 0)), 0)::text), 16) " + from_where,
                             params);
  return Checksum{r.int64(0, 0), r.text(0, 1)};
}

}  // namespace

report::RunSummary run_verify(const config::Config& cfg, const SessionOptions& options, report::Reporter& out) {
  auto start = std::chrono::steady_clock::now();
  report::RunSummary summary;
  summary.command = "verify";
  Session s(cfg, options, out);
  s.open();
  summary.run_id = s.begin_run("verify", "", "");
  try {
    s.stage_selected();
    s.begin();
    bool all_match = true;
    for (size_t i : s.plan().selected()) {
      const apply::TableSql& t = *s.staged()[i];
      report::TableResult r;
      r.source = t.table().name;
      r.target = t.table().target_name;
      r.verified = true;
      int64_t reverse_written = 0;
      pg::Pipeline judged(s.target());
      if (const config::Reverse* rev = reverse::reverse_entry_for(cfg, t)) {  // rows reverse wrote are not expected
        for (auto& statement : reverse::book_statements()) judged.add(statement);
        reverse::exclude_reverse_written(judged, t, *rev, reverse_written);
      }
      apply::prepare_table(judged, t, s.rejects_table(), s.plans(), s.staged(), r.counts);
      judged.run();
      pg::Params sp;
      Checksum src = checksum(s.target(), t.staged_tuple("s", sp, true), "FROM " + t.staging() + " s", sp);
      pg::Params tp;
      std::string owned = t.owned("t", tp);
      Checksum tgt = checksum(s.target(), t.target_tuple("t", tp, true), "FROM " + t.target() + " t WHERE " + owned, tp);
      r.source_rows = src.rows;
      r.target_rows = tgt.rows;
      r.source_checksum = src.digest;
      r.target_checksum = tgt.digest;
      r.matches = src.rows == tgt.rows && src.digest == tgt.digest;
      all_match = all_match && r.matches;
      out.table_done(r);
      summary.tables.push_back(r);
    }
    s.target().exec("ROLLBACK");
    s.target().exec("UPDATE stagesync.runs SET status = 'succeeded', finished_at = clock_timestamp(), error = $2 "
                    "WHERE run_id = $1",
                    std::vector<pg::Param>{summary.run_id, all_match ? pg::Param{} : pg::Param{"differences found"}});
    s.drop_staging();
    summary.outcome = all_match ? "succeeded" : "differences";
    summary.exit_code = all_match ? 0 : 6;
  } catch (const std::exception& e) {
    s.fail(e.what());
    throw;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace stagesync::run
