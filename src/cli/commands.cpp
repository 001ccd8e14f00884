#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "apply/table_counts.h"
#include "cli/exit_codes.h"
#include "config/config.h"
#include "demo/demo_run.h"
#include "init/init_run.h"
#include "pg/error.h"
#include "pg/interrupt.h"
#include "report/reporter.h"
#include "backup/backup.h"
#include "reverse/reverse_run.h"
#include "reverse/reverse_verify.h"
#include "sqlite/error.h"
#include "run/backup_run.h"
#include "run/check_run.h"
#include "run/health.h"
#include "run/run_loop.h"
#include "run/run_state.h"
#include "run/run_errors.h"
#include "run/status_run.h"
#include "run/sync_run.h"
#include "run/verify_run.h"
#include "schedule/clock.h"
#include "state/metadata.h"
#include "follow/capture.h"
#include "follow/follow_run.h"
#include "follow/follow_check.h"
#include "follow/follow_plan.h"
#include "follow/follow_status.h"

namespace stagesync::cli {
namespace {

std::vector<std::string> split_tables(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// --tables split into forward tables and reverse entries (a name may be both: a table synced both ways).
// Empty: every table of each. `forward`/`reverse` say whether that direction takes part at all.
struct Directions {
  std::vector<std::string> forward_tables, reverse_tables;
  bool forward = true, reverse = true;
};

Directions directions(const config::Config& cfg, const std::vector<std::string>& tables) {
  Directions d;
  d.forward = !cfg.tables.empty();
  d.reverse = !cfg.reverse.empty();
  if (tables.empty()) return d;
  for (const auto& n : tables) {
    for (const auto& t : cfg.tables) {
      if (t.name == n || t.target == n) d.forward_tables.push_back(n);
    }
    for (const auto& r : cfg.reverse) {
      if (r.name == n || r.into == n) d.reverse_tables.push_back(n);
    }
  }
  // A name neither direction knows goes to the forward side, which reports it.
  d.forward = d.forward && (!d.forward_tables.empty() || d.reverse_tables.empty());
  if (d.forward && d.forward_tables.empty()) d.forward_tables = tables;
  d.reverse = d.reverse && !d.reverse_tables.empty();
  return d;
}

struct Common {
  std::string config_path;
  std::string tables;
  bool json = false;
  double wait = 0;
};

report::Format format_of(const Common& c) { return c.json ? report::Format::Json : report::Format::Auto; }

// Reports a failure as the final summary (JSON) or one clear line (humans).
int fail(report::Reporter& out, const std::string& command, int code, const std::string& message,
         const std::vector<std::string>& details = {}, const std::vector<report::TableResult>& tables = {}) {
  report::RunSummary s;
  s.tables = tables;
  s.command = command;
  s.outcome = "failed";
  s.exit_code = code;
  s.error = message;
  s.problems = details;
  for (const auto& d : details) s.error += "\n  " + d;
  out.finished(s);
  return code;
}

// Runs `body`, turning every typed error into its exit code. This is the
// only place (with main's own catch) where errors become exit statuses.
template <typename Body>
int guarded(report::Reporter& out, const std::string& command, Body body) {
  try {
    return body();
  } catch (const config::ConfigError& e) {
    return fail(out, command, kUsage, e.what());
  } catch (const pg::MissingPassword& e) {
    return fail(out, command, kUsage, e.what());
  } catch (const run::CheckFailed& e) {
    return fail(out, command, kCheckFailed, e.what(), e.problems());
  } catch (const run::LockBusy& e) {
    return fail(out, command, kLocked, e.what());
  } catch (const run::InDoubt& e) {
    return fail(out, command, kInDoubt, e.what());
  } catch (const run::MassChangeRefused& e) {
    return fail(out, command, kMassChange, e.what(), e.tables(), e.results());
  } catch (const run::Refused& e) {
    return fail(out, command, kUsage, e.what());
  } catch (const apply::DataRefused& e) {
    return fail(out, command, kDataRefused, e.what());
  } catch (const state::MetadataError& e) {
    return fail(out, command, kMetadata, e.what());
  } catch (const sqlite::Error& e) {
    // The SQLite source could not be read (locked past the wait, damaged while read): nothing was applied.
    return fail(out, command, kDatabase, std::string("source: ") + e.what());
  } catch (const pg::Error& e) {
    // A statement cancelled by SIGINT/SIGTERM fails because of the signal.
    if (pg::interrupted()) return fail(out, command, kInterrupted, pg::Interrupted().what());
    std::string hint = e.is_connection_loss() ? " (connection lost; the target is unchanged or fully synced: the run "
                                                "either committed or rolled back as a whole)"
                                              : "";
    return fail(out, command, kDatabase, std::string(e.what()) + hint);
  } catch (const std::exception& e) {
    if (pg::interrupted()) return fail(out, command, kInterrupted, pg::Interrupted().what());
    return fail(out, command, kInternal, std::string("internal error: ") + e.what());
  }
}

// A duration option ("30s", "5m", "1h", "24h"); false (with a message) when it is not one.
bool duration_option(const std::string& name, const std::string& text, schedule::Duration& out) {
  if (text.empty()) return true;
  auto d = schedule::parse_duration(text);
  if (!d) {
    std::cerr << "stagesync: " << name << " must be a duration such as 30s, 5m, 1h or 24h, not '" << text << "'\n";
    return false;
  }
  out = *d;
  return true;
}

int finish(report::Reporter& out, const report::RunSummary& s) {
  out.finished(s);
  return s.exit_code;
}

int backup_command(report::Reporter& out, const config::Config& cfg, const std::string& command, const Common& c,
                   const std::vector<std::string>& tables, bool list, int prune_keep, const std::string& id) {
  report::RunSummary s;
  s.command = command;
  s.outcome = "succeeded";
  s.exit_code = kOk;
  if (command == "restore") {
    run::run_restore(cfg, id, c.wait);
    s.backup_id = id;
    out.info("restored backup " + id + ": the owned rows of its tables are back as they were");
  } else if (list || prune_keep >= 0) {
    pg::Connection target = run::locked_target(cfg, c.wait);
    if (prune_keep >= 0) out.info("dropped " + std::to_string(backup::prune(target, prune_keep)) + " backup(s)");
    for (const auto& b : backup::list(target)) {
      if (c.json) {  // one object per backup, as in status's `backups` (docs/json.md)
        nlohmann::json j = run::backup_json(b);
        j["event"] = "backup";
        std::cout << j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) << std::endl;
        continue;
      }
      std::string line = b.id + "  " + b.created_at + "  " + b.reason + (b.restorable() ? "" : "  NOT RESTORABLE");
      for (const auto& t : b.tables) {
        line += "\n    " + t.table + ": " + std::to_string(t.rows) + " rows" +
                (t.shape_unchanged ? "" : " (table changed shape since)");
      }
      out.info(line);
    }
  } else {
    s.backup_id = run::run_backup(cfg, tables, c.wait);
    out.info("backup " + s.backup_id + " taken; restore with: stagesync restore --config " + c.config_path +
             " --backup " + s.backup_id);
  }
  return finish(out, s);
}

// `stagesync init`: the file's text to --output (never over an existing file unless --force) or to standard
// output; what it guessed and which variables to set, to standard error.
int init_command(report::Reporter& out, const init::InitOptions& o, const std::string& output, bool force) {
  if (!output.empty() && !force && std::filesystem::exists(output)) {
    throw run::Refused("--output: " + output + " exists; stagesync init does not overwrite a file (use --force)");
  }
  init::InitResult r = init::run_init(o);
  for (const auto& m : r.messages) out.info(m);
  if (output.empty()) {
    std::cout << r.yaml << std::flush;
    return kOk;
  }
  std::ofstream f(output, std::ios::binary | std::ios::trunc);
  f << r.yaml;
  f.close();
  if (!f) throw run::Refused("--output: cannot write " + output);
  out.info("wrote " + output + "; next: stagesync check --config " + output);
  return kOk;
}

}  // namespace

int run_cli(int argc, char** argv) {
  pg::install_signal_handlers();  // first: a signal from now on rolls back instead of killing
  CLI::App app{"stagesync: keep a cloud PostgreSQL database in sync with a desktop database, safely."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "stagesync 0.1.0");

  Common c;
  auto add_common = [&](CLI::App* sub, bool tables, bool json) {
    sub->add_option("--config", c.config_path, "configuration file (YAML)")->required();
    if (tables) sub->add_option("--tables", c.tables, "comma-separated source or target table names");
    if (json) sub->add_flag("--json", c.json, "one JSON object per line on standard output");
    sub->add_option("--wait", c.wait, "seconds to wait for another run to finish (default 0: exit with status 7)");
  };

  CLI::App* check = app.add_subcommand("check", "check configuration, connections and schemas; change nothing");
  check->add_option("--config", c.config_path, "configuration file (YAML)")->required();
  check->add_option("--tables", c.tables, "comma-separated source or target table names");
  check->add_flag("--json", c.json, "machine-readable output");
  std::string check_strategy = "merge";
  check->add_option("--strategy", check_strategy, "the strategy whose risks to state")
      ->check(CLI::IsMember({"merge", "swap", "truncate-first"}));
  bool check_follow = false;
  check->add_flag("--follow", check_follow, "also judge whether the desktop is ready for `stagesync follow`");

  CLI::App* sync = app.add_subcommand("sync", "sync source rows into the target");
  add_common(sync, true, true);
  std::string mode = "full", strategy = "merge", transaction = "per-run", allow_mass_delete;
  bool accept_loss = false;
  sync->add_option("--mode", mode, "full | incremental")->check(CLI::IsMember({"full", "incremental"}));
  sync->add_option("--strategy", strategy, "merge | swap | truncate-first")
      ->check(CLI::IsMember({"merge", "swap", "truncate-first"}));
  sync->add_option("--transaction", transaction, "per-run (default: all tables or none) | per-table")
      ->check(CLI::IsMember({"per-run", "per-table"}));
  sync->add_flag("--i-accept-data-loss", accept_loss, "allow truncate-first on a development target");
  CLI::Option* mass = sync->add_option("--allow-mass-delete", allow_mass_delete,
                                       "let mass-change guards pass (all tables, or =a,b for some)")
                          ->expected(0, 1);

  CLI::App* verify = app.add_subcommand("verify", "compare checksums of owned rows, source against target");
  add_common(verify, true, true);

  demo::DemoOptions demo_opts;
  CLI::App* demo = app.add_subcommand("demo", "run a full demonstration on a throwaway local PostgreSQL");
  demo->add_option("--scale", demo_opts.scale, "data size (1 = one office, about 92,000 rows)");
  demo->add_flag("--keep", demo_opts.keep, "leave the demo server running and print how to reach it");
  demo->add_flag("--json", demo_opts.json, "one JSON object per line on standard output");
  demo->add_option("--source", demo_opts.source, "the desktop database: postgresql (default) or sqlite (a file)")
      ->check(CLI::IsMember({"postgresql", "sqlite"}));

  CLI::App* status = app.add_subcommand("status", "recent runs, last success per table, leftovers, locks");
  status->add_option("--config", c.config_path, "configuration file (YAML)")->required();
  status->add_flag("--json", c.json, "one JSON object on standard output");

  CLI::App* plan = app.add_subcommand("plan", "what a sync would do per table, without changing synced tables");
  add_common(plan, true, true);
  plan->add_option("--mode", mode, "full | incremental")->check(CLI::IsMember({"full", "incremental"}));
  plan->add_option("--strategy", strategy, "merge | swap")->check(CLI::IsMember({"merge", "swap"}));

  CLI::App* backup_cmd = app.add_subcommand("backup", "copy the owned rows of target tables (server-side); list; prune");
  add_common(backup_cmd, true, true);
  bool list_backups = false;
  int prune_keep = -1;
  backup_cmd->add_flag("--list", list_backups, "list backups and whether each is restorable");
  backup_cmd->add_option("--prune", prune_keep, "drop all but the newest N backups");
  CLI::App* restore_cmd = app.add_subcommand("restore", "put a backup's rows back, in one transaction");
  add_common(restore_cmd, false, true);
  std::string backup_id;
  restore_cmd->add_option("--backup", backup_id, "backup id (see backup --list)")->required();

  init::InitOptions init_opts;
  std::string init_tables, init_output;
  bool init_force = false;
  CLI::App* init_cmd =
      app.add_subcommand("init", "write a first configuration from both databases' catalogs; change nothing");
  init_cmd->add_option("--source", init_opts.source_url, "source database (libpq URI or key=value conninfo)");
  init_cmd->add_option("--sqlite", init_opts.sqlite_path, "a SQLite source file (instead of --source)");
  init_cmd->add_option("--target", init_opts.target_url, "target database (libpq URI or key=value conninfo)")
      ->required();
  init_cmd->add_option("--tables", init_tables, "comma-separated source or target table names (default: all)");
  init_cmd->add_option("--output", init_output, "file to write (default: standard output)");
  init_cmd->add_flag("--force", init_force, "overwrite the --output file");
  CLI::App* run_cmd = app.add_subcommand("run", "unattended: cycles of forward (and reverse) sync, once or every D");
  run_cmd->add_option("--config", c.config_path, "configuration file (YAML); read again before every cycle")
      ->required();
  run_cmd->add_flag("--json", c.json, "one JSON object per line on standard output (one `cycle` object per cycle)");
  bool run_once = false;
  std::string run_every, run_full_every, run_backoff_max, run_state, on_failure, on_failure_timeout;
  run_cmd->add_flag("--once", run_once, "run one cycle and exit with its status (for a timer, cron, Task Scheduler)");
  run_cmd->add_option("--every", run_every, "repeat a cycle every D (30s, 5m, 1h) until SIGTERM/SIGINT");
  run_cmd->add_option("--full-every", run_full_every, "a full sync followed by verify every D (e.g. 24h)");
  run_cmd->add_option("--backoff-max", run_backoff_max, "after failures, wait at most D between attempts (default 1h)");
  run_cmd->add_option("--state", run_state, "the local run state file (default: next to the configuration)");
  run_cmd->add_option("--on-failure", on_failure, "after a failed cycle run CMD (sh -c) with the summary on stdin");
  run_cmd->add_option("--on-failure-timeout", on_failure_timeout,
                      "kill the --on-failure command after D (default 30s)");
  status->add_option("--state", run_state,
                     "the local run state file of `stagesync run` (default: next to the configuration)");
  std::string max_lag;
  int max_failures = 1;
  status->add_option("--max-lag", max_lag, "exit 20 when a table is further behind than D, 21 when syncs are failing");
  status->add_option("--max-failures", max_failures,
                     "with --max-lag: failing after N failed attempts in a row (default 1)")
      ->check(CLI::PositiveNumber);

  CLI::App* reverse_cmd = app.add_subcommand("reverse", "copy mobile-created target rows to the desktop, exactly once");
  add_common(reverse_cmd, true, true);

  CLI::App* follow_cmd =
      app.add_subcommand("follow", "apply the desktop's committed transactions in batches, from its logical decoding");
  follow_cmd->add_option("--config", c.config_path, "configuration file (YAML)")->required();
  follow_cmd->add_flag("--json", c.json, "one JSON object per line on standard output");
  follow_cmd->add_option("--wait", c.wait, "seconds to wait for another run to finish (default 0: exit with status 7)");
  follow::FollowOptions follow_opts;
  follow_cmd->add_option("--interval", follow_opts.interval_seconds,
                         "seconds a committed desktop change waits at most for its batch (default 1)")
      ->check(CLI::PositiveNumber);
  follow_cmd->add_flag("--once", follow_opts.once, "catch up with the desktop's current WAL, then exit");
  follow_cmd->add_flag("--uninstall", follow_opts.uninstall, "drop the replication slot and the follow state");
  follow_cmd->add_flag("--apply-replica-identity", follow_opts.apply_replica_identity,
                       "with follow: { replica_identity: full }: set it on the followed desktop tables, then exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }

  if (app.got_subcommand("demo")) return demo::run_demo(demo_opts);

  if (app.got_subcommand("run")) {
    run::LoopOptions lo;
    lo.config_path = c.config_path;
    lo.json = c.json;
    lo.state_path = run_state;
    lo.on_failure = on_failure;
    if (!duration_option("--every", run_every, lo.every) ||
        !duration_option("--full-every", run_full_every, lo.full_every) ||
        !duration_option("--backoff-max", run_backoff_max, lo.backoff_max) ||
        !duration_option("--on-failure-timeout", on_failure_timeout, lo.on_failure_timeout)) {
      return kUsage;
    }
    if (run_once == !run_every.empty()) {
      std::cerr << "stagesync run: give either --once (one cycle) or --every DURATION (repeat until stopped)\n";
      return kUsage;
    }
    pg::abort_on_second_signal();  // the first signal rolls back and stops; a second ends the process at once
    auto out = report::make_reporter(format_of(c));
    run::Guard guard = [](report::Reporter& o, const std::string& command, const std::function<int()>& body) {
      return guarded(o, command, body);
    };
    lo.forward = follow::sync;  // incremental: { capture: logical } reads the slot
    return run::run_loop(lo, schedule::process_clock(), guard, *out);
  }

  auto out = report::make_reporter(format_of(c));
  std::string command = app.get_subcommands().front()->get_name();
  return guarded(*out, command, [&]() -> int {
    if (command == "init") {
      init_opts.tables = split_tables(init_tables);
      init_opts.output = init_output;
      return init_command(*out, init_opts, init_output, init_force);
    }
    config::Config cfg = config::load_config(c.config_path);
    // Before any command opens a connection: a missing password variable is a
    // configuration problem (exit 2), found without touching either server.
    config::check_environment(cfg);
    std::vector<std::string> tables = split_tables(c.tables);
    if (command == "check") {
      run::CheckReport r = run::run_check(cfg, tables, check_strategy);
      if (cfg.follow.present || check_follow) follow::check_follow(cfg, r);
      for (const auto& f : r.facts) out->info("- " + f);
      for (const auto& w : r.warnings) out->warning(w);
      if (!r.problems.empty()) throw run::CheckFailed(r.problems);
      report::RunSummary s;
      s.command = "check";
      s.outcome = "succeeded";
      s.exit_code = kOk;
      return finish(*out, s);
    }
    if (command == "status") {
      schedule::Duration lag_limit{0};
      if (!duration_option("--max-lag", max_lag, lag_limit)) throw run::Refused("--max-lag: not a duration");
      std::string state_path = run_state.empty() ? run::default_state_path(c.config_path) : run_state;
      std::string problem;
      std::optional<run::RunState> local = run::load_run_state(state_path, problem);
      nlohmann::json st;
      try {
        st = run::read_status(cfg);
        st["followers"] = follow::follow_status(*run::connect_side("target", run::target_endpoint(cfg), false), cfg);
      } catch (const pg::Error& e) {
        // For monitoring, an unreachable target is an answer: failing (below). Otherwise an error (exit 4).
        if (max_lag.empty()) throw;
        st = {{"target", nullptr}, {"target_error", e.what()}, {"tables", nlohmann::json::array()}};
      }
      run::add_run_health(st, cfg, local, state_path);
      st["schedule"]["problem"] = problem.empty() ? nlohmann::json() : nlohmann::json(problem);
      int code = kOk;
      if (!max_lag.empty()) {
        std::string verdict = run::judge_health(st, run::HealthLimits{lag_limit, max_failures});
        code = verdict == "failing" ? kFailing : verdict == "behind" ? kBehind : kOk;
      }
      if (c.json) {
        st["event"] = "status";
        std::cout << st.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) << std::endl;
      } else {
        std::cout << run::render_status(st) << follow::render_followers(st["followers"]);
      }
      return code;
    }
    if (command == "backup" || command == "restore") return backup_command(*out, cfg, command, c, tables,
                                                                           list_backups, prune_keep, backup_id);
    if (command == "reverse") {
      return finish(*out, reverse::run_reverse(cfg, reverse::ReverseOptions{tables, c.wait, false}, *out));
    }
    if (command == "follow") {
      // The first signal stops after the batch commits; a second cancels it (rolled back, 130), a third ends the
      // process at once. Between batches the first stops at once (exit 0).
      pg::abort_on_second_signal();
      follow_opts.lock_wait_seconds = c.wait;
      follow_opts.max_retained_wal = cfg.follow.max_retained_wal;
      if (follow_cmd->count("--interval") == 0) follow_opts.interval_seconds = cfg.follow.interval;
      return finish(*out, follow::run_follow(cfg, follow_opts, *out));
    }
    Directions both = directions(cfg, tables);
    run::SessionOptions session;
    session.tables = both.forward_tables;
    session.lock_wait_seconds = c.wait;
    if (command == "verify") {
      report::RunSummary s;
      s.command = "verify";
      s.outcome = "succeeded";
      s.exit_code = kOk;
      if (both.forward) s = run::run_verify(cfg, session, *out);
      if (both.reverse) {
        for (auto& t : reverse::verify_reverse(cfg, both.reverse_tables, *out)) {
          if (!t.matches && s.exit_code == kOk) {
            s.outcome = "differences";
            s.exit_code = kDifferences;
          }
          s.tables.push_back(std::move(t));
        }
      }
      return finish(*out, s);
    }
    if (command == "plan" && !both.forward) {
      report::RunSummary s = reverse::run_reverse(cfg, reverse::ReverseOptions{both.reverse_tables, c.wait, true}, *out);
      s.command = "plan";
      return finish(*out, s);
    }
    run::SyncOptions o;
    o.session = session;
    o.mode = mode;
    o.strategy = *apply::parse_strategy(strategy);
    o.per_table_transactions = transaction == "per-table";
    o.accept_data_loss = accept_loss;
    o.plan_only = command == "plan";
    if (mass->count() > 0) {
      o.allow_mass_delete = split_tables(allow_mass_delete);
      o.allow_mass_delete_all = o.allow_mass_delete.empty();
    }
    report::RunSummary s = follow::sync(cfg, o, *out);  // (run::run_sync(), unless capture: logical)
    if (o.plan_only && both.reverse && s.exit_code == kOk) {  // what a reverse run would do, too
      report::RunSummary r = reverse::run_reverse(cfg, reverse::ReverseOptions{both.reverse_tables, c.wait, true}, *out);
      for (auto& t : r.tables) s.tables.push_back(std::move(t));
    }
    if (o.plan_only && cfg.follow.present && s.exit_code == kOk) {  // what follow gets and would change on the desktop
      follow::FollowPlan fp = follow::plan_follow(cfg);
      for (const auto& line : fp.lines) out->info(line);
      s.follow = std::move(fp.json);
    }
    return finish(*out, s);
  });
}

}  // namespace stagesync::cli
