#include "stage/staging_table.h"

#include <algorithm>
#include <stdexcept>

#include "pg/pipeline.h"
#include "pg/sql.h"

namespace stagesync::stage {

StagingTable::StagingTable(pg::Connection& target, const std::string& run_id, size_t index,
                           const plan::TablePlan& table)
    : target_(target), table_(table) {
  std::vector<std::string> cols;
  for (const auto& c : table.columns) cols.push_back(pg::ident(c.name) + " " + c.stage_type);
  qualified_ = create_work_table(target_, work_table_name(run_id, index), pg::join(cols, ", "));
}

std::string create_work_table(pg::Connection& target, const std::string& qualified, const std::string& columns_ddl) {
  target.defer("CREATE UNLOGGED TABLE " + qualified + " (" + columns_ddl + ") WITH (autovacuum_enabled = false)");
  return qualified;
}

std::string work_table_name(const std::string& run_id, size_t index, const std::string& suffix) {
  return pg::qualified("stagesync", "s_" + run_id + "_" + std::to_string(index) + suffix);
}

std::string StagingTable::copy_in(const std::string& format) const {
  std::vector<std::string> names;
  for (const auto& c : table_.columns) names.push_back(c.name);
  return "COPY " + qualified_ + " (" + pg::column_list(names) + ") FROM STDIN (FORMAT " + format + ")";
}

StagingChain::StagingChain(pg::Connection& target, const std::vector<StagingTable*>& tables, std::string format)
    : target_(target), tables_(tables), format_(std::move(format)) {}

int64_t StagingChain::load(StagingTable& table, const CopyFill& fill) {
  if (next_ >= tables_.size() || tables_[next_] != &table) {
    throw std::logic_error("staging chain: tables must be loaded in the order given");
  }
  if (!in_) {
    std::string message;
    for (const StagingTable* t : tables_) message += t->copy_in(format_) + ";\n" + t->analyze_sql() + ";\n";
    in_ = std::make_unique<pg::CopyIn>(target_, message);  // the deferred CREATEs go first
  } else if (!in_->next()) {
    throw std::logic_error("staging chain: the server ended the message early");
  }
  ++next_;
  return fill(*in_);
}

void StagingTable::analyze() {
  // Deferred: it travels with the next statement (the next table's COPY, or the apply).
  target_.defer(analyze_sql());
}

std::string StagingTable::analyze_sql() const {
  // Statistics for the columns the apply joins and groups on (and the row
  // count); the others are never used in a plan.
  std::vector<std::string> analyzed = table_.key;
  for (const auto& r : table_.references) analyzed.insert(analyzed.end(), r.columns.begin(), r.columns.end());
  if (table_.duplicates.keep_newest) analyzed.push_back(table_.duplicates.by);
  std::sort(analyzed.begin(), analyzed.end());
  analyzed.erase(std::unique(analyzed.begin(), analyzed.end()), analyzed.end());
  if (analyzed.empty() && !table_.columns.empty()) analyzed.push_back(table_.columns.front().name);
  return "ANALYZE " + qualified_ + (analyzed.empty() ? "" : " (" + pg::column_list(analyzed) + ")");
}

std::string rejects_table(const std::string& run_id) { return pg::qualified("stagesync", "r_" + run_id); }

std::string released_table(const std::string& run_id) { return pg::qualified("stagesync", "r_" + run_id + "_x"); }

void create_rejects_table(pg::Connection& target, const std::string& run_id) {
  create_work_table(target, rejects_table(run_id),
                    "table_name text NOT NULL, row_key text, column_name text, reason text NOT NULL");
  create_work_table(target, released_table(run_id), "table_name text NOT NULL, row_key text");
}

std::string leftovers_sql() {
  return "SELECT relname FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.to_regnamespace('stagesync') "
         "AND relkind = 'r' AND (relname LIKE 's\\_%' OR relname LIKE 'r\\_%')";
}

void drop_work_tables(pg::Connection& target, const std::vector<std::string>& qualified) {
  pg::Pipeline p(target);
  for (const auto& name : qualified) p.add("DROP TABLE IF EXISTS " + name);
  p.run();
}

}  // namespace stagesync::stage
