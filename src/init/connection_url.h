// A connection string as `stagesync init` writes it: without its password.
#pragma once

#include <string>

namespace stagesync::init {

struct SafeUrl {
  std::string url;            // the same string without any password (URI user:password@, ?password=, password=)
  bool had_password = false;  // it had one: the configuration names a password_env instead
};

// Throws config::ConfigError when the string is no valid libpq conninfo, or
// when a password would remain (the message never contains the string).
SafeUrl without_password(const std::string& conninfo, const std::string& side);

}  // namespace stagesync::init
