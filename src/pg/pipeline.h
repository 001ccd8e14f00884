// Pipeline: statements sent to one server in one message and answered
// together (libpq pipeline mode), so a batch costs one network round trip
// instead of one per statement. Across the internet (30-200 ms to the cloud)
// round trips, not rows, are what a run with little to do spends its time on.
//
// Contract:
//   - Statements run in the order added, each a single statement (the
//     extended protocol takes no "a; b" strings and no COPY).
//   - Inside an explicit transaction (BEGIN sent earlier, or added first) they
//     are part of it. Outside one, the whole batch is one implicit transaction:
//     all of it commits or none of it does.
//   - The first failing statement ends the batch: the server skips the rest
//     (they never run). run() reads every answer, leaves the connection usable
//     (in a failed transaction if one was open), and throws that statement's
//     pg::Error, exactly as Connection::exec() would have.
//   - Each statement's callback sees its result once run() has it; a callback
//     may throw (a refusal judged from a count). The batch is still read to
//     the end, and the first exception in statement order is rethrown.
//   - A lost connection is thrown as a connection-loss pg::Error; nothing
//     tells which statements ran (a COMMIT among them is in doubt).
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pg/connection.h"

namespace stagesync::pg {

class Pipeline {
 public:
  using OnResult = std::function<void(Result&)>;  // may move the result out

  explicit Pipeline(Connection& conn) : conn_(conn) {}
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  void add(std::string sql, OnResult on_result = nullptr) {
    add(std::move(sql), std::vector<Param>{}, std::move(on_result));
  }
  void add(std::string sql, const Params& params, OnResult on_result = nullptr);
  void add(std::string sql, std::vector<Param> params, OnResult on_result = nullptr);
  // A statement whose failure is no failure of the batch (cleanup after a
  // COMMIT): its error is not thrown, though the server still skips the
  // statements after it.
  void add_best_effort(std::string sql, std::vector<Param> params = {});

  size_t size() const { return queued_.size(); }
  // After run(): seconds from the start of run() until the answer of each
  // statement added (by position) arrived. The server runs statements one
  // after another while answers stream back, so the difference between two
  // neighbours is about the later statement's own time.
  const std::vector<double>& answered() const { return answered_; }
  // Seconds the statements added at positions [from, to) took, by answered().
  double seconds(size_t from, size_t to) const;
  bool empty() const { return queued_.empty(); }

  // Sends the connection's deferred statements and every queued one (so an
  // empty pipeline still sends what is deferred: test empty() to skip), reads
  // every answer, calls the callbacks, and empties the queue (also when it
  // throws). With nothing to send it sends nothing.
  void run();
  // run() in two halves, so statements on two servers can run at the same
  // time: start() sends (false: there was nothing to send, or a single
  // statement that already ran), finish() reads. Nothing else may be sent on
  // the connection in between.
  bool start();
  void finish();
  // Always pipeline mode, even for one statement (required between start() and finish()).
  void set_async() { async_ = true; }
  // Each statement its own transaction (a Sync after each), still one round
  // trip: a failure ends only its own statement.
  void set_sync_each() { sync_each_ = true; }

 private:
  struct Statement {
    std::string sql;
    std::vector<Param> params;
    OnResult on_result;
    bool best_effort = false;
  };
  void send_all();
  void answer();

  Connection& conn_;
  std::vector<Statement> queued_;
  std::vector<double> answered_;
  std::chrono::steady_clock::time_point started_at_;
  std::exception_ptr first_;  // the first failure in statement order
  bool broken_ = false;
  bool async_ = false;
  bool sync_each_ = false;
  size_t first_own_ = 0;
};

}  // namespace stagesync::pg
