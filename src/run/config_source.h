// The configuration `stagesync run` uses, read again before every cycle. A
// changed file is used from the next cycle; a broken one (YAML, keys, a
// missing password variable) leaves the last good version in use and says so
// each cycle until it is fixed. Without any good version yet, there is none.
#pragma once

#include <optional>
#include <string>

#include "config/config.h"

namespace stagesync::run {

class ConfigSource {
 public:
  explicit ConfigSource(std::string path) : path_(std::move(path)) {}
  // The configuration for this cycle, or nullptr (then `problem` says why).
  // `note` says what changed: a reload, or a broken file whose last good version stays in use.
  const config::Config* current(std::string& problem, std::string& note);

 private:
  std::string path_;
  std::string text_;  // the file's text when last read
  std::optional<config::Config> good_;
  std::string broken_;  // why the file as it is now cannot be used
};

}  // namespace stagesync::run
