// Typed errors raised by the PostgreSQL layer.
//
// pg::Error carries the server's SQLSTATE and diagnostic fields so callers can
// decide what is transient (connection class, serialization failure, deadlock)
// and what is permanent, and can name the table/column in messages.
// A lost connection is reported as pg::Error with is_connection_loss() true.
#pragma once

#include <stdexcept>
#include <string>

namespace stagesync::pg {

struct Diagnostics {
  std::string sqlstate;  // five characters, empty when the server sent none
  std::string detail;
  std::string hint;
  std::string table;
  std::string column;
  std::string constraint;
  std::string context;
};

inline constexpr const char* kConnectionFailure = "08006";

class Error : public std::runtime_error {
 public:
  Error(std::string message, Diagnostics diag, bool connection_lost)
      : std::runtime_error(std::move(message)), diag_(std::move(diag)), connection_lost_(connection_lost) {}
  // A lost connection the server reported no error for (SQLSTATE 08006, connection_failure).
  static Error connection_loss(std::string message);

  const Diagnostics& diagnostics() const { return diag_; }
  const std::string& sqlstate() const { return diag_.sqlstate; }
  // True when the connection to the server is gone (broken socket, server
  // shutdown, SQLSTATE class 08 / 57P0x). Such errors are worth retrying.
  bool is_connection_loss() const { return connection_lost_; }
  // Connection loss, serialization failure, deadlock, lock timeout.
  bool is_transient() const;

 private:
  Diagnostics diag_;
  bool connection_lost_;
};

// The endpoint names a password variable (`password_env`) that is not set.
// Not a database error: nothing was sent to a server, and the fix is in the
// environment or the configuration. The command line checks every configured
// variable before connecting (config::check_environment); this is the
// connection's own guard for other callers.
class MissingPassword : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace stagesync::pg
