// One run at a time per target database and scope (SPEC guarantee 6).
//
// A session-level advisory lock on the target connection: the server releases
// it when the session ends, so a crashed or killed run never leaves it behind.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "pg/pipeline.h"

namespace stagesync::state {

class RunLock {
 public:
  // Tries for up to `wait_seconds` (0: once). Returns false when another run
  // holds the lock; throws pg::Error on connection problems.
  static bool acquire(pg::Connection& target, const std::string& scope_key, double wait_seconds);
  // One try, batched with other statements: sets `taken` when the pipeline
  // runs. With `only_if` (a condition given the statement's parameters so far,
  // which adds its own), the lock is tried only where it holds; `taken` stays
  // unset where it did not.
  using Condition = std::function<std::string(std::vector<pg::Param>& params)>;
  static void try_once(pg::Pipeline& p, const std::string& scope_key, std::optional<bool>& taken,
                       const Condition& only_if = nullptr);
  // The pid of the session holding the lock, or 0.
  static int holder(pg::Connection& target, const std::string& scope_key);
};

}  // namespace stagesync::state
