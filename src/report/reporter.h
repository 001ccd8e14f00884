// Operator output. Three renderings of the same events:
//   terminal  a live line per table while rows stream (rows, rows/s, ETA), then a table of results
//   plain     one line per event, for logs and cron mail (used when stderr is not a terminal)
//   json      one JSON object per line on stdout; the final line is the summary
// Human output is ASCII unless the locale says the console shows UTF-8.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "report/run_summary.h"

namespace stagesync::report {

struct Progress {
  std::string table;
  int64_t rows = 0;
  int64_t estimate = -1;  // expected rows, -1 when unknown
  double seconds = 0;
  bool done = false;
};

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void info(const std::string& message) = 0;
  virtual void warning(const std::string& message) = 0;
  virtual void progress(const Progress& p) = 0;
  virtual void table_done(const TableResult& t) = 0;
  virtual void finished(const RunSummary& s) = 0;
};

enum class Format { Auto, Terminal, Plain, Json };

std::unique_ptr<Reporter> make_reporter(Format format);

// "1,234,567"
std::string thousands(int64_t n);

}  // namespace stagesync::report
