#include "source/postgres/reconcile_batch.h"

#include <algorithm>

#include "pg/pipeline.h"
#include "pg/sql.h"
#include "stage/copy_chain.h"
#include "source/postgres/source_query.h"
#include "stage/staging_table.h"

namespace stagesync::source::postgres {

ReconcileBatch::ReconcileBatch(pg::Connection& source, pg::Connection& target, TextSettings settings,
                               std::vector<std::string>& created)
    : source_(source), target_(target), settings_(std::move(settings)), created_(created) {}

const Reconciliation& ReconcileBatch::add(ReconcileInput in) {
  size_t index = in.index;
  tables_.push_back(std::make_unique<Reconciliation>(source_, target_, std::move(in), created_));
  by_index_[index] = tables_.back().get();
  return *tables_.back();
}

void ReconcileBatch::digests() {
  // The transaction's settings travel with its first statements.
  target_.defer("BEGIN");
  target_.defer("SET LOCAL enable_sort = off");
  // A hash aggregate of every bucket in memory, not spilled in partitions.
  target_.defer("SET LOCAL work_mem = '64MB'");
  for (const auto& [name, value] : settings_.values) {
    target_.defer("SELECT pg_catalog.set_config($1, $2, true)", std::vector<pg::Param>{name, value});
  }
  for (auto& t : tables_) t->defer_target_digests();
  // Tables read by a key list have no digests: when every table is one, the
  // statements above travel with the next phase's message (one round trip less).
  if (std::all_of(tables_.begin(), tables_.end(),
                  [](const auto& t) { return t->input().method == delta::Method::Logical; }))
    return;
  // Both servers at once: the target's pipeline is sent, the source's
  // digests computed one table after another, then the target's answers read.
  pg::Pipeline p(target_);
  p.set_async();
  bool started = p.start();
  try {
    for (auto& t : tables_) t->source_digests();
  } catch (...) {
    if (started) {
      try {
        p.finish();
      } catch (const std::exception&) {
        // The source's error is the one reported.
      }
    }
    throw;
  }
  if (started) p.finish();
}

void ReconcileBatch::run() {
  if (tables_.empty()) return;
  digests();

  // Every table's pairs in one COPY, into one table tagged by position, moved
  // into each table's own pairs table in the same message.
  stage::CopyChain pairs;
  std::vector<std::string> selects, fills;
  std::string bundle = stage::work_table_name(tables_.front()->input().run_id, tables_.front()->input().index, "_kb");
  for (size_t k = 0; k < tables_.size(); ++k) {
    Reconciliation& t = *tables_[k];
    t.compare();
    for (auto& copy : t.take_copies()) pairs.add(std::move(copy));
    if (!t.differs()) continue;
    selects.push_back(t.pairs_select(static_cast<int>(k)));
    for (auto& fill : t.pairs_fill(bundle, static_cast<int>(k))) fills.push_back(std::move(fill));
  }
  if (!selects.empty()) {
    created_.push_back(stage::create_work_table(target_, bundle, "t int, k text[], h bigint"));
    pairs.add(stage::CopyChain::Copy{copy_from(source_, pg::join(selects, " UNION ALL ")),
                                     "COPY " + bundle + " (t, k, h) FROM STDIN (FORMAT binary)", fills, nullptr});
  }
  pairs.run(target_);

  for (auto& t : tables_) t->defer_wanted();
  target_.send_deferred();

  stage::CopyChain fetch;
  for (auto& t : tables_) {
    std::vector<std::vector<std::string>> parents;
    for (const auto& parent : t->input().children_of) {
      auto it = by_index_.find(parent.parent);
      parents.push_back(it == by_index_.end() ? std::vector<std::string>{} : it->second->staged());
    }
    t->fetch(fetch, parents);
  }
  fetch.run(target_);

  for (auto& t : tables_) t->defer_finish();
  target_.defer("COMMIT");
}

}  // namespace stagesync::source::postgres
