// Named instants of a reverse run where a fault test can stop the process
// (decision 0008 lists them). Off unless the environment asks:
//   STAGESYNC_REVERSE_PAUSE_AT=name   write "name\n" to STAGESYNC_REVERSE_PAUSE_FILE (if set) and wait
//                                     until killed or until the test removes that file (the run goes on)
//   STAGESYNC_REVERSE_CRASH_AT=name   raise SIGKILL at that instant
// For tests only; the names are not an interface.
#pragma once

#include <string>

namespace stagesync::reverse {

void crash_point(const std::string& name);

}  // namespace stagesync::reverse
