#include "logical/exported_snapshot.h"

namespace stagesync::logical {

void begin_in_snapshot(pg::Connection& conn, const std::string& snapshot_name) {
  conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT " + conn.literal(snapshot_name));
}

}  // namespace stagesync::logical
