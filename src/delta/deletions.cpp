#include "delta/deletions.h"

#include "stage/staging_table.h"

namespace stagesync::delta {

std::string deletions_table(pg::Connection& target, const apply::TableSql& t, const std::string& run_id, size_t index) {
  return stage::create_work_table(target, stage::work_table_name(run_id, index, "_d"), t.key_ddl());
}

}  // namespace stagesync::delta
