#include "run/cycle.h"

#include <chrono>
#include <optional>

#include "pg/interrupt.h"
#include "reverse/reverse_run.h"
#include "run/sync_run.h"
#include "run/verify_run.h"

namespace stagesync::run {
namespace {

constexpr int kLockBusy = 7;  // docs/exit-codes.md: another run holds the lock
constexpr int kInterrupted = 130;

// Passes a step's warnings on and keeps its summary for the cycle's own line.
// Its progress, per-table and info lines are left out: an unattended log gets
// one line per cycle (the per-table counts are in the target's run records).
class StepReporter : public report::Reporter {
 public:
  explicit StepReporter(report::Reporter& out) : out_(out) {}
  void info(const std::string&) override {}
  void warning(const std::string& m) override { out_.warning(m); }
  void progress(const report::Progress&) override {}
  void table_done(const report::TableResult&) override {}
  void finished(const report::RunSummary& s) override { summary_ = s; }
  const std::optional<report::RunSummary>& summary() const { return summary_; }

 private:
  report::Reporter& out_;
  std::optional<report::RunSummary> summary_;
};

// Runs one step's command through the guard and describes how it ended.
StepOutcome run_step(const std::string& step, const std::string& command, const std::string& mode, const Guard& guard,
                     report::Reporter& out, const std::function<report::RunSummary(report::Reporter&)>& body) {
  auto start = std::chrono::steady_clock::now();
  StepReporter r(out);
  StepOutcome o;
  o.step = step;
  o.mode = mode;
  o.exit_code = guard(r, command, [&] {
    report::RunSummary s = body(r);
    r.finished(s);
    return s.exit_code;
  });
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (const auto& s = r.summary()) {
    o.run_id = s->run_id;
    o.error = s->error;
    for (const auto& t : s->tables) {
      o.totals.read += t.counts.read;
      o.totals.inserted += t.counts.inserted;
      o.totals.updated += t.counts.updated;
      o.totals.deleted += t.counts.deleted;
      o.totals.rejected += t.counts.rejected;
    }
    o.outcome = s->outcome;
    // One line naming what failed: the first problem behind a count ("1 problem(s) found").
    if (!s->problems.empty()) {
      o.error = o.error.substr(0, o.error.find('\n')) + ": " + s->problems.front() +
                (s->problems.size() > 1 ? " (and " + std::to_string(s->problems.size() - 1) + " more)" : "");
    }
  }
  // Another run holds the target's lock: this step waits for the next tick (never interleaves).
  if (o.exit_code == kLockBusy)
    o.outcome = "skipped";
  else if (o.exit_code == kInterrupted)
    o.outcome = "interrupted";
  else if (o.exit_code != 0 && o.outcome == "succeeded")
    o.outcome = "failed";
  if (o.outcome.empty()) o.outcome = o.exit_code == 0 ? "succeeded" : "failed";
  // The error's first line is the step's line; the detail went out as the step's own lines.
  if (size_t nl = o.error.find('\n'); nl != std::string::npos) o.error = o.error.substr(0, nl);
  return o;
}

}  // namespace

bool CycleResult::failed() const {
  for (const auto& s : steps) {
    if (s.outcome == "failed" || s.outcome == "differences") return true;
  }
  return false;
}

bool CycleResult::interrupted() const {
  for (const auto& s : steps) {
    if (s.outcome == "interrupted") return true;
  }
  return false;
}

std::string CycleResult::error() const {
  std::string e;
  for (const auto& s : steps) {
    if (s.outcome != "failed" && s.outcome != "differences") continue;
    e += (e.empty() ? "" : "; ") + s.step + ": " + (s.error.empty() ? s.outcome : s.error);
  }
  return e;
}

CycleResult run_cycle(const config::Config& cfg, bool full, const Guard& guard, report::Reporter& out,
                      const SyncFunction& forward_sync) {
  CycleResult c;
  c.full = full;
  auto failed = [&] { return c.steps.back().outcome != "succeeded"; };

  // 1. Forward: incremental, or full on a full cycle (then verified, below).
  SyncOptions forward;
  forward.mode = full ? "full" : "incremental";
  c.steps.push_back(run_step("forward", "sync", forward.mode, guard, out,
                             [&](report::Reporter& r) {
                               return forward_sync ? forward_sync(cfg, forward, r) : run_sync(cfg, forward, r);
                             }));
  bool forward_ok = !failed();

  // 2. Reverse (target to source), when configured: whether or not the forward step succeeded (the
  //    directions are independent). The step named "reverse" is the "reverse" direction of the local run
  //    state (run_loop.cpp); `status` reads the target's run records of command 'reverse' for it.
  if (!cfg.reverse.empty() && !pg::interrupted()) {
    c.steps.push_back(run_step("reverse", "reverse", "", guard, out, [&](report::Reporter& r) {
      return reverse::run_reverse(cfg, reverse::ReverseOptions{}, r);
    }));
  }

  // 3. Verify after a full forward sync: source and target checksums of the owned rows.
  if (full && forward_ok && !pg::interrupted()) {
    c.steps.push_back(run_step("verify", "verify", "", guard, out,
                               [&](report::Reporter& r) { return run_verify(cfg, SessionOptions{}, r); }));
  }

  for (const auto& s : c.steps) {
    if (s.outcome == "interrupted") {
      c.exit_code = kInterrupted;
      break;
    }
    if (c.exit_code == 0 && s.exit_code != 0) c.exit_code = s.exit_code;
  }
  return c;
}

}  // namespace stagesync::run
