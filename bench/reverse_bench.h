// sync_bench --reverse: `stagesync reverse` of 10,000 and 100,000 mobile work
// diary rows into an empty desktop table (the reference schema, with its
// time -> timestamp conversion), and a no-change reverse run after each: wall
// time, peak RSS of the stagesync process, and round trips to each server
// (counted by proxies in front of both, no delay). docs/performance.md.
#pragma once

#include <string>

namespace stagesync::bench {

// Returns the process exit status (0: every run succeeded and the desktop holds every row).
int reverse_bench(const std::string& stagesync, int repeat, bool markdown);

}  // namespace stagesync::bench
