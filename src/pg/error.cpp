#include "pg/error.h"

namespace stagesync::pg {

Error Error::connection_loss(std::string message) {
  Diagnostics d;
  d.sqlstate = kConnectionFailure;
  return Error(std::move(message), std::move(d), true);
}

bool Error::is_transient() const {
  if (connection_lost_) return true;
  const std::string& s = diag_.sqlstate;
  if (s.size() != 5) return false;
  if (s.compare(0, 2, "08") == 0) return true;            // connection exception
  return s == "40001"                                     // serialization_failure
         || s == "40P01"                                  // deadlock_detected
         || s == "55P03"                                  // lock_not_available
         || s == "57P01" || s == "57P02" || s == "57P03"  // admin/crash shutdown, cannot connect now
         || s == "53300";                                 // too_many_connections
}

}  // namespace stagesync::pg
