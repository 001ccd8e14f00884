#include "reverse/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace stagesync::reverse {

void crash_point(const std::string& name) {
  const char* crash = std::getenv("STAGESYNC_REVERSE_CRASH_AT");
  if (crash && name == crash) ::raise(SIGKILL);
  const char* pause = std::getenv("STAGESYNC_REVERSE_PAUSE_AT");
  if (!pause || name != pause) return;
  if (const char* file = std::getenv("STAGESYNC_REVERSE_PAUSE_FILE")) {
    std::ofstream(file) << name << "\n";
  }
  for (int i = 0; i < 600; ++i) ::sleep(1);  // the test ends it; never longer than 10 minutes
}

}  // namespace stagesync::reverse
