#include "delta/reconcile_batch.h"

#include "pg/pipeline.h"
#include "stage/copy_chain.h"

namespace stagesync::delta {

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

  stage::CopyChain pairs;
  for (auto& t : tables_) t->compare(pairs);
  pairs.run(source_, target_);

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
  fetch.run(source_, target_);

  for (auto& t : tables_) t->defer_finish();
  target_.defer("COMMIT");
}

}  // namespace stagesync::delta
