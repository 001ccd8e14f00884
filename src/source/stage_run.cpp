#include "source/stage_run.h"

#include "delta/deletions.h"

namespace stagesync::source {

void StageRun::mark_unchanged(size_t i, delta::MethodChoice why) {
  const plan::TablePlan& t = plan.tables.at(i);
  TableRun& r = tables.at(i);
  if (t.keyed()) {
    // An empty deletion list: for children's references, every parent row survives.
    created.push_back(delta::deletions_table(target, *r.sql, run_id, i));
    r.sql->set_deletions(created.back());
  }
  r.unchanged = true;
  r.method = std::move(why);
  r.source_rows = r.target_owned = r.watermark.rows;
  r.watermark.rejects_run = r.previous_rejects;
}

bool StageRun::references_changed(const plan::TablePlan& t) const {
  for (const auto& ref : t.references) {
    if (ref.policy == config::OrphanPolicy::Keep) continue;  // a child's fate does not depend on its parent rows
    const TableRun& parent = tables.at(ref.parent);
    if (parent.sql && !parent.unchanged) return true;
  }
  return false;
}

void StageRun::progress(size_t i, int64_t rows, double seconds, bool done) const {
  const TableRun& r = tables.at(i);
  out.progress(report::Progress{plan.tables.at(i).target_name, rows, r.estimate, seconds, done});
}

}  // namespace stagesync::source
