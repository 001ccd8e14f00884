// The SELECT that reads one table from the source, already in target shape:
// staged columns in order, each cast to its staging type, lookups joined,
// the scope applied.
#pragma once

#include <string>

#include "pg/connection.h"
#include "plan/sync_plan.h"

namespace stagesync::stage {

// A SELECT statement. Scope values are quoted with `source.literal()` since a
// COPY statement accepts no parameters.
std::string source_select(const plan::TablePlan& table, pg::Connection& source);

// `COPY (source_select) TO STDOUT (FORMAT binary)`.
std::string source_copy(const plan::TablePlan& table, pg::Connection& source);

}  // namespace stagesync::stage
