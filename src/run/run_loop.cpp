#include "run/run_loop.h"

#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "pg/interrupt.h"
#include "run/config_source.h"
#include "run/failure_hook.h"
#include "run/run_state.h"
#include "schedule/cadence.h"

namespace stagesync::run {
namespace {

constexpr int kUsage = 2;  // docs/exit-codes.md
constexpr int kInterrupted = 130;

std::string hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

nlohmann::json text_or_null(const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); }

std::string cycle_outcome(const CycleResult& c) {
  if (c.interrupted()) return "interrupted";
  if (c.failed()) return "failed";
  bool all_skipped = !c.steps.empty();
  for (const auto& s : c.steps) all_skipped = all_skipped && s.outcome == "skipped";
  return all_skipped ? "skipped" : "succeeded";
}

std::string step_text(const StepOutcome& s) {
  std::string t = s.step + (s.mode.empty() ? "" : " " + s.mode) + " " + s.outcome;
  if (s.step == "forward" && s.outcome == "succeeded") {
    const auto& c = s.totals;
    t += " (read " + std::to_string(c.read) + ", inserted " + std::to_string(c.inserted) + ", updated " +
         std::to_string(c.updated) + ", deleted " + std::to_string(c.deleted) +
         (c.rejected ? ", rejected " + std::to_string(c.rejected) : "") + ")";
  }
  if (!s.error.empty() && s.outcome != "succeeded") t += ": " + s.error;
  if (s.exit_code != 0) t += " (exit " + std::to_string(s.exit_code) + ")";
  return t;
}

// Prints the cycle's one line (or JSON object) on standard output.
class CycleOutput {
 public:
  explicit CycleOutput(bool json) : json_(json) {}
  void cycle(const nlohmann::json& j) {
    if (json_) return emit(j);
    std::string line =
        "cycle " + std::to_string(j["cycle"].get<int64_t>()) + " " + j["outcome"].get<std::string>() +
        (j["full"].get<bool>() ? " (full)" : "") + " in " +
        schedule::format_duration(schedule::Duration(static_cast<int64_t>(j["seconds"].get<double>() * 1000))) + ": ";
    std::string steps;
    for (const auto& s : steps_) steps += (steps.empty() ? "" : "; ") + step_text(s);
    line += steps.empty() ? j["error"].is_null() ? std::string("nothing ran") : j["error"].get<std::string>() : steps;
    if (j["consecutive_failures"].get<int>() > 0) {
      line += "; " + std::to_string(j["consecutive_failures"].get<int>()) + " failed cycle(s) in a row";
    }
    if (!j["next_cycle"].is_null()) line += "; next cycle " + j["next_cycle"].get<std::string>();
    std::cout << line << std::endl;
  }
  void steps(const std::vector<StepOutcome>& s) { steps_ = s; }
  // Ticks left unused: `reason` overrun | backoff.
  void skipped(const std::string& reason, int64_t ticks, const std::string& message, const std::string& next) {
    if (json_) {
      return emit({{"event", "tick_skipped"},
                   {"reason", reason},
                   {"ticks", ticks},
                   {"message", message},
                   {"next_cycle", text_or_null(next)}});
    }
    std::cout << "tick skipped (" << reason << "): " << message << (next.empty() ? "" : "; next cycle " + next)
              << std::endl;
  }

 private:
  void emit(const nlohmann::json& j) {
    std::cout << j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) << std::endl;
  }
  bool json_;
  std::vector<StepOutcome> steps_;
};

nlohmann::json step_json(const StepOutcome& s) {
  const auto& c = s.totals;
  return {{"step", s.step},
          {"mode", text_or_null(s.mode)},
          {"outcome", s.outcome},
          {"exit_code", s.exit_code},
          {"run_id", text_or_null(s.run_id)},
          {"error", text_or_null(s.error)},
          {"counts",
           {{"read", c.read},
            {"inserted", c.inserted},
            {"updated", c.updated},
            {"deleted", c.deleted},
            {"rejected", c.rejected}}},
          {"seconds", s.seconds}};
}

// Folds a cycle's steps into the per-direction state (verify belongs to forward).
void record_directions(RunState& st, const CycleResult& c, const std::string& started) {
  std::map<std::string, std::string> outcome, error;
  for (const auto& s : c.steps) {
    std::string dir = s.step == "reverse" ? "reverse" : "forward";
    std::string& o = outcome[dir];
    bool worse = o.empty() || o == "succeeded" || (o == "skipped" && s.outcome != "succeeded");
    if (worse) {
      o = s.outcome;
      error[dir] = s.error;
    }
  }
  for (const auto& [dir, o] : outcome) {
    DirectionState& d = st.directions[dir];
    d.last_attempt = started;
    d.last_outcome = o;
    if (o == "succeeded") {
      d.last_success = started;
      d.consecutive_failures = 0;
      d.last_error.clear();
    } else if (o == "failed" || o == "differences") {
      ++d.consecutive_failures;
      d.last_error = error[dir];
    }
  }
}

}  // namespace

int run_loop(const LoopOptions& o, schedule::Clock& clock, const Guard& guard, report::Reporter& out) {
  std::string state_path = o.state_path.empty() ? default_state_path(o.config_path) : o.state_path;
  std::string problem;
  RunState st = load_run_state(state_path, problem).value_or(RunState{});
  if (!problem.empty()) out.warning(problem);
  auto save = [&] {
    try {
      save_run_state(state_path, st);
    } catch (const std::exception& e) {
      out.warning(std::string(e.what()) + "; `stagesync status` will not show this cycle's local state");
    }
  };
  st.host = hostname();
  st.pid = getpid();
  st.every_seconds = o.every.count() / 1000;
  st.stopped.clear();

  ConfigSource configs(o.config_path);
  FailureHook hook(o.on_failure, o.on_failure_timeout);
  CycleOutput print(o.json);
  schedule::Cadence cadence(o.every.count() > 0 ? o.every : schedule::Duration(1), o.backoff_max, clock.elapsed());
  // Failures carried over from an earlier process (a restart): the backoff continues.
  int failures = st.consecutive_failures;
  std::string last_error;
  int64_t cycle_no = 0;

  while (true) {
    schedule::Duration started = clock.elapsed();
    schedule::Clock::WallTime wall_started = clock.wall();
    std::string started_iso = schedule::iso_utc(wall_started);
    ++cycle_no;
    ++st.cycles;

    std::string config_problem, note;
    const config::Config* cfg = configs.current(config_problem, note);
    if (!note.empty()) out.warning(note);
    bool full = false;
    if (cfg && o.full_every.count() > 0) {
      auto last = schedule::parse_iso_utc(st.last_full);
      // A last full cycle "in the future" (the wall clock was set back) is due as well.
      full = !last || *last > wall_started || wall_started - *last >= o.full_every;
    }
    CycleResult c;
    if (cfg) {
      c = run_cycle(*cfg, full, guard, out, o.forward);
    } else {
      // Nothing can run without a configuration: no server is contacted.
      StepOutcome s;
      s.step = "forward";
      s.outcome = "failed";
      s.exit_code = kUsage;
      s.error = config_problem;
      if (size_t nl = s.error.find('\n'); nl != std::string::npos) s.error = s.error.substr(0, nl) + " ...";
      out.warning(config_problem);
      c.steps.push_back(s);
      c.exit_code = kUsage;
    }
    schedule::Duration ended = clock.elapsed();
    std::string outcome = cycle_outcome(c);
    if (outcome == "failed")
      ++failures;
    else if (outcome == "succeeded")
      failures = 0;
    if (outcome == "succeeded" && full) st.last_full = started_iso;
    st.consecutive_failures = failures;
    record_directions(st, c, started_iso);

    bool stop = o.every.count() == 0 || pg::interrupted() || c.interrupted();
    schedule::NextTick next;
    std::string next_iso;
    if (!stop) {
      next = cadence.next(started, ended, failures);
      next_iso = schedule::iso_utc(clock.wall() + (next.at - clock.elapsed()));
    }
    st.next_cycle = next_iso;
    if (stop && o.every.count() > 0) st.stopped = schedule::iso_utc(clock.wall());
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& s : c.steps) steps.push_back(step_json(s));
    nlohmann::json line = {{"event", "cycle"},
                           {"cycle", cycle_no},
                           {"started", started_iso},
                           {"seconds", std::chrono::duration<double>(ended - started).count()},
                           {"full", full},
                           {"outcome", outcome},
                           {"exit_code", c.exit_code},
                           {"error", text_or_null(c.error())},
                           {"config", cfg ? (note.empty()                               ? "current"
                                             : note.find("broken") != std::string::npos ? "last-good"
                                                                                        : "reloaded")
                                          : "broken"},
                           {"consecutive_failures", failures},
                           {"next_cycle", text_or_null(next_iso)},
                           {"steps", steps}};
    st.last_cycle = line;
    save();
    print.steps(c.steps);
    print.cycle(line);
    if (outcome == "failed") {
      last_error = c.error();
      std::string text = "stagesync run on " + st.host + ": cycle " + std::to_string(cycle_no) + " failed (" +
                         std::to_string(failures) + " in a row) at " + started_iso +
                         "\nconfiguration: " + o.config_path + "\n";
      for (const auto& s : c.steps) text += step_text(s) + "\n";
      if (!next_iso.empty()) text += "next attempt: " + next_iso + "\n";
      hook.notify(text, out);
    }
    hook.reap(out);
    if (stop) {
      if (pg::interrupted() || c.interrupted()) return kInterrupted;
      return c.exit_code;
    }

    if (next.overrun_skipped > 0) {
      print.skipped("overrun", next.overrun_skipped,
                    "the cycle took " + schedule::format_duration(ended - started) + ", longer than --every " +
                        schedule::format_duration(o.every) + ": " + std::to_string(next.overrun_skipped) +
                        " tick(s) passed unused (cycles never overlap)",
                    next_iso);
    }
    // Back off tick by tick, saying so at each: a failing sync is reported every
    // cycle, but the servers are tried only when the backoff allows.
    for (int64_t k = next.backoff_skipped; k > 0; --k) {
      schedule::Duration tick = next.at - cadence.every() * k;
      if (!clock.sleep_for(tick - clock.elapsed())) break;
      print.skipped("backoff", 1,
                    std::to_string(failures) + " failed cycle(s) in a row, waiting " +
                        schedule::format_duration(cadence.backoff(failures)) +
                        " between attempts; last error: " + last_error,
                    next_iso);
    }
    if (!pg::interrupted()) clock.sleep_for(next.at - clock.elapsed());
    if (pg::interrupted()) {
      st.next_cycle.clear();
      st.stopped = schedule::iso_utc(clock.wall());
      save();
      out.info("stopped by a signal between cycles; nothing was running");
      return kInterrupted;
    }
  }
}

}  // namespace stagesync::run
