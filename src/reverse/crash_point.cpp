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
  const char* file = std::getenv("STAGESYNC_REVERSE_PAUSE_FILE");
  if (file) std::ofstream(file) << name << "\n";
  // Until the test kills the process or removes the file (then the run goes on); never longer than 10 minutes.
  for (int i = 0; i < 6000; ++i) {
    if (file && ::access(file, F_OK) != 0) return;
    ::usleep(100000);
  }
}

}  // namespace stagesync::reverse
