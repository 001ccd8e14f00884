// Typed outcomes that end a command early. Each maps to one exit code (cli/exit_codes.h).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace stagesync::run {

// Configuration does not match the databases (`check` problems).
class CheckFailed : public std::runtime_error {
 public:
  explicit CheckFailed(std::vector<std::string> problems)
      : std::runtime_error(std::to_string(problems.size()) + " problem(s) found; nothing was changed"),
        problems_(std::move(problems)) {}
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Another stagesync run holds the target's run lock.
class LockBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The request is refused as unsafe or unsupported (e.g. truncate-first on production).
class Refused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace stagesync::run
