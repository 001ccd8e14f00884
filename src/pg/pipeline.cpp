#include "pg/pipeline.h"

#include <chrono>
#include <exception>

namespace stagesync::pg {

void Pipeline::add(std::string sql, const Params& params, OnResult on_result) {
  std::vector<Param> values(params.values().begin(), params.values().end());
  add(std::move(sql), std::move(values), std::move(on_result));
}

void Pipeline::add(std::string sql, std::vector<Param> params, OnResult on_result) {
  queued_.push_back(Statement{std::move(sql), std::move(params), std::move(on_result)});
}

void Pipeline::add_best_effort(std::string sql, std::vector<Param> params) {
  queued_.push_back(Statement{std::move(sql), std::move(params), nullptr, true});
}

void Pipeline::send_all() {
  PGconn* c = conn_.raw();
  for (const auto& st : queued_) {
    std::vector<const char*> values = param_values(st.params);
    if (!PQsendQueryParams(c, st.sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                           0)) {
      throw conn_.error_from(nullptr, "query failed on " + conn_.describe());
    }
    if (sync_each_ && &st != &queued_.back() && !PQpipelineSync(c)) {
      throw conn_.error_from(nullptr, "query failed on " + conn_.describe());
    }
  }
  // Blocking mode is deadlock-free here: while libpq waits to write, it reads
  // whatever the server has answered so far.
  if (!PQpipelineSync(c)) throw conn_.error_from(nullptr, "query failed on " + conn_.describe());
}

double Pipeline::seconds(size_t from, size_t to) const {
  if (to > answered_.size() || from >= to) return 0;
  return answered_[to - 1] - (from == 0 ? 0 : answered_[from - 1]);
}

void Pipeline::run() {
  if (start()) finish();
}

bool Pipeline::start() {
  started_at_ = std::chrono::steady_clock::now();
  answered_.clear();
  size_t own = queued_.size();  // statements added by the caller (the deferred ones go first)
  std::vector<Connection::Deferred> deferred = conn_.take_deferred();
  if (!deferred.empty()) {
    std::vector<Statement> all;
    for (auto& d : deferred) all.push_back(Statement{std::move(d.sql), std::move(d.params), std::move(d.on_result)});
    for (auto& st : queued_) all.push_back(std::move(st));
    queued_.swap(all);
  }
  first_own_ = queued_.size() - own;
  if (queued_.empty()) return false;
  if (queued_.size() == 1 && !async_) {  // nothing to batch: the plain protocol, same round trip
    Statement st = std::move(queued_.front());
    queued_.clear();
    if (st.best_effort) {
      try {
        conn_.exec(st.sql, st.params);
      } catch (const Error& e) {
        if (e.is_connection_loss()) throw;
      }
      answer();
      return false;
    }
    Result r = conn_.exec(st.sql, st.params);
    answer();
    if (st.on_result) st.on_result(r);
    return false;
  }
  PGconn* c = conn_.raw();
  if (!c || !PQenterPipelineMode(c)) {
    queued_.clear();
    throw conn_.error_from(nullptr, "cannot start a pipeline on " + conn_.describe());
  }
  first_ = nullptr;
  broken_ = false;
  try {
    send_all();
  } catch (...) {
    first_ = std::current_exception();
    broken_ = true;
  }
  return true;
}

void Pipeline::answer() {
  answered_.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count());
}

void Pipeline::finish() {
  PGconn* c = conn_.raw();
  std::exception_ptr first = first_;
  bool broken = broken_;
  for (size_t i = 0; i < queued_.size() && !broken; ++i) {
    Result res(PQgetResult(c));
    if (i >= first_own_) answer();
    if (!res.raw()) {  // no answer at all: the connection is gone
      if (!first) first = std::make_exception_ptr(conn_.error_from(nullptr, "query failed on " + conn_.describe()));
      broken = true;
      break;
    }
    while (PGresult* more = PQgetResult(c)) PQclear(more);  // a statement's answers end with NULL
    ExecStatusType st = PQresultStatus(res.raw());
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
      if (queued_[i].on_result && !first) {
        try {
          queued_[i].on_result(res);
        } catch (...) {
          first = std::current_exception();
        }
      }
    } else if (st != PGRES_PIPELINE_ABORTED) {  // aborted: skipped after an earlier failure
      if (PQstatus(c) != CONNECTION_OK) broken = true;
      if (!first && (!queued_[i].best_effort || broken)) {
        first = std::make_exception_ptr(conn_.error_from(res.raw(), "query failed on " + conn_.describe()));
      }
    }
    if (sync_each_ && i + 1 < queued_.size() && !broken) {  // the end of this statement's own transaction
      Result sync(PQgetResult(c));
      if (!sync.raw() || PQresultStatus(sync.raw()) != PGRES_PIPELINE_SYNC) broken = true;
    }
  }
  if (!broken) {
    Result sync(PQgetResult(c));
    if (!sync.raw() || PQresultStatus(sync.raw()) != PGRES_PIPELINE_SYNC) broken = true;
  }
  queued_.clear();
  if (!broken && !PQexitPipelineMode(c)) broken = true;
  if (broken && !first)
    first = std::make_exception_ptr(conn_.error_from(nullptr, "pipeline broke on " + conn_.describe()));
  if (first) std::rethrow_exception(first);
}

}  // namespace stagesync::pg
