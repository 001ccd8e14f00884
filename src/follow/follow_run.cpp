#include "follow/follow_run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "follow/changed_keys.h"
#include "follow/desktop_snapshot.h"
#include "logical/readiness.h"
#include "logical/replica_identity.h"
#include "logical/replication_connection.h"
#include "logical/slot_errors.h"
#include "logical/test_decoding.h"
#include "logical/transaction_reader.h"
#include "pg/interrupt.h"
#include "run/backoff.h"
#include "run/kept_target.h"
#include "run/run_errors.h"
#include "run/session.h"
#include "run/sync_run.h"
#include "source/postgres/postgres_source.h"
#include "state/follow_state.h"

namespace stagesync::follow {
namespace {

// A Session hook that makes its PostgreSQL source read in the slot's exported
// snapshot (`snapshot_name`, empty: one of its own) and call `in_snapshot`
// inside it; any other kind of source is refused.
std::function<void(source::Source&)> in_snapshot(std::string snapshot_name,
                                                 source::postgres::PostgresSource::InSnapshot in_snapshot) {
  return [snapshot_name = std::move(snapshot_name), in_snapshot = std::move(in_snapshot)](source::Source& s) {
    auto* desktop = dynamic_cast<source::postgres::PostgresSource*>(&s);
    if (!desktop) throw run::Refused("follow reads a PostgreSQL desktop's write-ahead log; this source is " + s.describe());
    desktop->set_snapshot(snapshot_name, in_snapshot);
  };
}

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A second SIGINT/SIGTERM cancelled a batch: it rolled back (exit 130, as any
// interrupted run). A first one only stops the follower after its batch.
class BatchCancelled : public pg::Interrupted {};

// A batch's sync says what every sync says to its own reporter; a follower
// passes on its warnings only (a batch's table lines would repeat every second).
// (With `tables`, a capture's sync: its tables' lines too, but not its summary.)
class BatchReporter : public report::Reporter {
 public:
  BatchReporter(report::Reporter& out, bool tables) : out_(out), tables_(tables) {}
  void info(const std::string& message) override {
    if (tables_) out_.info(message);
  }
  void warning(const std::string& message) override { out_.warning(message); }
  void progress(const report::Progress& p) override {
    if (tables_) out_.progress(p);
  }
  void table_done(const report::TableResult& t) override {
    if (tables_) out_.table_done(t);
  }
  void finished(const report::RunSummary&) override {}

 private:
  report::Reporter& out_;
  bool tables_;
};

std::string bytes(int64_t n) {
  char buf[64];
  if (n >= (int64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(n) / (1 << 30));
  } else if (n >= (1 << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(n) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%lld bytes", static_cast<long long>(n));
  }
  return buf;
}

class Follower {
  using Lsn = logical::Lsn;

 public:
  Follower(const config::Config& cfg, const FollowOptions& o, report::Reporter& out)
      : cfg_(cfg), o_(o), out_(out), quiet_(out, o.capture) {
    for (const auto& t : cfg.tables) {
      followed_.insert(t.name);
      for (const auto& l : t.lookups) followed_.insert(l.from);
    }
  }

  report::RunSummary run() {
    auto start = Clock::now();
    summary_.command = "follow";
    summary_.mode = "logical";
    summary_.strategy = "merge";
    if (!cfg_.source.sqlite.empty()) {
      throw run::Refused(
          "follow reads a PostgreSQL desktop's write-ahead log; this desktop is a SQLite file (use "
          "`stagesync run --every 1m` with `sync --mode incremental`)");
    }
    target_ = run::connect_side("target", run::target_endpoint(cfg_), false);
    slot_ = slot_name(*target_, cfg_);
    if (o_.uninstall) {
      uninstall();
    } else if (o_.apply_replica_identity) {
      apply_replica_identity();
    } else if (desktop().exec("SHOW wal_level").text(0, 0) != "logical") {
      poll();
    } else {
      follow();
    }
    if (pg::stop_requested()) {
      std::string last = summary_.run_id.empty() ? last_run_ : summary_.run_id;
      out_.info("stopped by signal " + (last.empty() ? "before any batch" : "after batch " + last) +
                (applied_.valid() ? "; target at " + applied_.str() : ""));
    }
    summary_.outcome = "succeeded";
    summary_.exit_code = 0;
    summary_.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return summary_;
  }

 private:
  pg::Connection& desktop() {
    if (!desktop_ || !desktop_->is_alive()) desktop_ = run::connect_side("source", run::source_endpoint(cfg_), false);
    return *desktop_;
  }
  // (A session closed while the follower waited, found without a round trip, is replaced at once.)
  pg::Connection& target() {
    if (!target_ || target_->closed_while_idle())
      target_ = run::connect_side("target", run::target_endpoint(cfg_), false);
    return *target_;
  }

  void follow() {
    int attempt = 0;
    bool started = false;
    Lsn goal;
    auto last_wal_check = Clock::now();
    auto quiet_since = Clock::now();  // --once: since when the stream showed no progress
    Lsn progress;  // the furthest position the stream showed (--once)
    for (;;) {
      if (pg::stop_requested()) break;
      try {
        if (!stream_) {
          resume();
          last_wal_check = Clock::now();
          if (pg::stop_requested()) break;  // after a first full sync that a signal let commit
        }
        if (!started) {
          // --once catches up with the WAL written before it started.
          goal = Lsn::parse(desktop().exec("SELECT pg_current_wal_insert_lsn()::text").text(0, 0));
          started = true;
          quiet_since = Clock::now();
          if (o_.once) stream_->send_status(true);  // the server's answer says how far it is: no wait when caught up
        }
        // --once asks the server where it is every 20 ms and stops as soon as it is past `goal`.
        if (!held_) held_ = o_.once ? reader_->next(20ms, goal) : reader_->next(wait());
        if (!held_) {
          attempt = 0;
          backoff_.reset();
          release_quiet_wal();
          if (o_.once) {
            if (caught_up(goal)) {
              // No desktop change: `sync --mode incremental` (capture: logical)
              // still applies what the target's side freed since the last run,
              // as every incremental run does (a key set aside for a collision
              // with a row the sync does not own, which the mobile app deleted,
              // is inserted now), and records its run. A batch of no
              // transaction: its key lists prove every other table unchanged.
              // (An idle `follow --once` writes nothing: a follower applies
              // such keys with its next batch.)
              if (batches_ == 0 && o_.capture) committed_before_stop([&] { batch(); });
              break;
            }
            // Quiet: the stream shows no progress. A walsender decoding a huge
            // transaction sends nothing of it before its commit, but its
            // keepalives' position moves on.
            Lsn seen = stream_->position();
            if (seen > progress) quiet_since = Clock::now();
            progress = std::max(progress, seen);
            if (Clock::now() - quiet_since > 10s) {
              out_.warning("the replication stream did not report the desktop's WAL position " + goal.str() +
                           " within 10 s of quiet; every transaction it sent is applied");
              break;
            }
            stream_->send_status(true);  // the server answers with a keepalive carrying its position
          }
          if (Clock::now() - last_wal_check > 10s) {
            last_wal_check = Clock::now();
            check_slot();
          }
          continue;
        }
        quiet_since = Clock::now();
        if (skip_unfollowed()) continue;
        check_slot();
        last_wal_check = Clock::now();
        if (!committed_before_stop([&] { batch(); })) break;
        attempt = 0;
        backoff_.reset();  // a follower runs for months: each failure's retries are timed from its first attempt
      } catch (const logical::SlotLost& e) {
        out_.warning(std::string(e.what()) +
                     ": the changes since the last batch cannot be read; a full sync in a new "
                     "slot's snapshot follows");
        close_stream();
        state::forget_follow_state(target(), slot_);
      } catch (const run::PlanChanged& e) {
        // Nothing was written; the batch is read again from the target's
        // LSN with a plan resolved anew (nothing is kept after a failed run).
        out_.info(e.what());
        close_stream();
      } catch (const BatchCancelled&) {
        throw;
      } catch (const pg::Interrupted&) {
        break;  // a signal while no batch was under way (waiting for WAL, reading the slot's state)
      } catch (const pg::Error& e) {
        close_stream();
        // A server that went away (a restart, a cut link) took the cached sessions with it, though they do
        // not know it yet: the next attempt connects afresh instead of failing again on a dead session.
        desktop_.reset();
        target_.reset();
        if (pg::interrupted()) break;  // the signal cancelled a read or a one-statement update: nothing half-done
        if (!e.is_transient()) throw;
        if (pg::stop_requested()) break;  // a batch asked to stop failed: the next start retries it
        std::string why = (e.sqlstate().empty() ? "" : "SQLSTATE " + e.sqlstate() + ": ") + e.what();
        if (!backoff_) backoff_.emplace(cfg_.retry);
        if (!backoff_->wait_before_retry(++attempt, why, out_)) throw;
      }
    }
    close_stream();
  }

  // Runs a batch (or a first full sync, or a polled sync) so that a first
  // SIGINT/SIGTERM lets it commit and have its LSN confirmed; the loops stop
  // after it (pg::stop_requested()). A second signal cancels it: rolled back,
  // BatchCancelled. After a signal that came before it (false), it does not start.
  template <typename Body>
  bool committed_before_stop(Body body) {
    pg::DeferredStop deferred;
    if (pg::interrupted()) return false;
    try {
      body();
    } catch (...) {
      if (pg::interrupted()) throw BatchCancelled();
      throw;
    }
    return true;
  }

  // The longest a batch waits for its first transaction.
  std::chrono::milliseconds wait() const {
    return std::chrono::milliseconds(static_cast<int64_t>(std::max(o_.interval_seconds, 0.01) * 1000));
  }

  // The stream has shown every transaction committed before `goal`.
  bool caught_up(Lsn goal) const {
    return !held_ && !reader_->inside_transaction() && stream_->position() >= goal;
  }

  // Opens the stream where the target's LSN says, or takes the first full sync.
  void resume() {
    close_stream();
    std::optional<state::FollowState> st = state::read_follow_state(target(), slot_);
    logical::SlotStatus slot = logical::slot_status(desktop(), slot_);
    if (st && (!slot.exists || slot.invalidated())) {
      out_.warning("replication slot " + slot_ +
                   (slot.exists ? " was invalidated by the desktop server (it held more "
                                  "WAL than max_slot_wal_keep_size)"
                                : " is missing on the desktop") +
                   ": the changes since the last batch cannot be read; a full sync in a new slot's snapshot follows");
      state::forget_follow_state(target(), slot_);
      st.reset();
    }
    if (st && slot.confirmed_flush_lsn && *slot.confirmed_flush_lsn > Lsn::parse(st->confirmed_lsn)) {
      // The slot released changes the target says it does not hold: the
      // target went back (restored from a backup, its metadata edited).
      out_.warning("the target's follow state (" + st->confirmed_lsn + ") is behind what replication slot " + slot_ +
                   " already released (" + slot.confirmed_flush_lsn->str() +
                   "): the target went back; a full sync in a new slot's snapshot follows");
      state::forget_follow_state(target(), slot_);
      st.reset();
    }
    if (!st && slot.exists) {
      // A first run that stopped before its full sync committed (or state dropped above).
      drop_slot();
    }
    if (!st) {
      committed_before_stop([&] { first_sync(); });
      return;
    }
    last_run_ = st->last_run_id;
    start_stream(Lsn::parse(st->confirmed_lsn));
  }

  void start_stream(Lsn from) {
    auto deadline = Clock::now() + 30s;
    for (;;) {
      auto r = std::make_unique<logical::ReplicationConnection>(run::source_endpoint(cfg_));
      try {
        r->start(slot_, from, logical::test_decoding_options());
        stream_ = std::move(r);
        break;
      } catch (const pg::Error& e) {
        // 55006: the slot is active: a walsender of an earlier, ended follower may hold it for a moment.
        if (e.sqlstate() != "55006") throw;
        if (Clock::now() > deadline) {
          throw run::LockBusy("replication slot " + slot_ + " is in use: another `stagesync follow` of this target " +
                              "and scope is running");
        }
        std::this_thread::sleep_for(200ms);
        pg::throw_if_interrupted();
      }
    }
    reader_ = std::make_unique<logical::TransactionReader>(*stream_);
    applied_ = from;
  }

  // Creates the slot, and syncs everything in its exported snapshot.
  void first_sync() {
    auto repl = std::make_unique<logical::ReplicationConnection>(run::source_endpoint(cfg_));
    logical::CreatedSlot created = repl->create_slot(slot_, logical::kPlugin, /*export_snapshot=*/true);
    out_.info("created replication slot " + slot_ + " on the desktop (consistent point " +
              created.consistent_point.str() + "); full sync in its snapshot");
    run::SyncOptions so = o_.batch;
    so.mode = "full";
    so.no_retry = true;
    so.session.lock_wait_seconds = std::max(o_.lock_wait_seconds, 30.0);
    so.session.configure_source = in_snapshot(created.snapshot_name, nullptr);
    so.session.keep = &kept_;
    so.record_in_commit = [&](pg::Pipeline& p, const std::string& run_id) {
      record(p, created.consistent_point, run_id, true);
    };
    try {
      report::RunSummary s = sync_with_kept_session(so);  // (a lost slot: what its batches kept)
      summary_.run_id = last_run_ = s.run_id;
      summary_.tables = s.tables;
    } catch (...) {
      // A slot without a recorded full sync holds WAL for nothing: dropped (best effort; the next start does too).
      try {
        repl->drop_slot(slot_);
      } catch (...) {
      }
      throw;
    }
    repl->start(slot_, created.consistent_point, logical::test_decoding_options());
    stream_ = std::move(repl);
    reader_ = std::make_unique<logical::TransactionReader>(*stream_);
    applied_ = created.consistent_point;
    ++batches_;
    out_.info("full sync " + summary_.run_id + " committed; following from " + applied_.str());
  }

  void record(pg::Pipeline& p, Lsn lsn, const std::string& run_id, bool first) {
    state::FollowState s;
    s.slot_name = slot_;
    s.scope_key = run::scope_key(cfg_);
    s.source = desktop().describe();
    s.confirmed_lsn = lsn.str();
    s.last_run_id = run_id;
    state::record_follow_state(p, s, first);
  }

  // Whether `t` changed a configured table or a lookup's table. Names are
  // compared without their schema when the configuration gives none.
  bool follows(const logical::Transaction& t) const {
    auto reader = t.changes.reader();
    logical::Change c;
    while (reader.next(c)) {
      if (followed_.count(c.relation.name) || followed_.count(c.relation.schema + "." + c.relation.name)) return true;
    }
    return false;
  }

  // WAL that holds no transaction the stream sends (VACUUM FULL, CREATE
  // INDEX, a rewrite, checkpoints: nothing for a plugin to decode) moves the
  // server's position on while no batch confirms anything: the slot would hold
  // it until the next followed change, and enough of it would have check_slot()
  // drop the slot and fall back to a full sync. Between transactions (every
  // transaction before the server's position has arrived and is applied or
  // skipped), that position is recorded on the target (one statement), then
  // confirmed, as skip_unfollowed() does for a transaction of other tables:
  // at once when it is a WAL segment past the applied one, else at most every
  // 10 s (the slot's restart point moves only with a confirmation that comes
  // after the server logged its running transactions, every 15 s when busy).
  void release_quiet_wal() {
    Lsn seen = stream_->server_wal_end();
    if (reader_->inside_transaction() || seen <= applied_) return;
    if (seen.value < applied_.value + kQuietRelease && Clock::now() - last_release_ < 10s) return;
    record_and_confirm(seen);
    last_release_ = Clock::now();
  }
  static constexpr uint64_t kQuietRelease = uint64_t{16} << 20;  // a WAL segment
  Clock::time_point last_release_ = Clock::now();

  // Transactions at the head of the stream that change no followed table
  // (the application's other tables, other programs) need no sync: their
  // end is recorded on the target (one statement) and confirmed, so the slot
  // does not hold their WAL and the slot never gets ahead of the target.
  bool skip_unfollowed() {
    Lsn last;
    while (held_ && !follows(*held_)) {
      last = held_->end_lsn;
      held_ = reader_->next(0ms);
    }
    if (last.valid()) record_and_confirm(last);
    return !held_;
  }

  // A position with nothing to apply before it (no batch): recorded on the
  // target first (one statement: the target is never behind the slot), then
  // confirmed to the slot.
  void record_and_confirm(Lsn at) {
    state::advance_follow_state(target(), slot_, at.str());
    stream_->confirm(at);
    applied_ = at;
  }

  // The transactions after `held_` until the stream reaches `goal` (nothing
  // the snapshot shows can come later), waiting at most a few seconds: a
  // transaction not drained in time goes to the next batch. `drained`: the
  // stream reached `goal`.
  std::optional<logical::Transaction> next_until(Lsn goal, bool& drained) {
    auto start = Clock::now();
    bool flushed = false;
    drained = false;
    for (;;) {
      if (!reader_->inside_transaction() && stream_->position() >= goal) {
        drained = true;
        return std::nullopt;
      }
      if (auto t = reader_->next(100ms, goal)) return t;
      if (Clock::now() > start + 5s) return std::nullopt;
      if (!flushed && Clock::now() > start + 300ms) {
        flush_desktop_wal();
        flushed = true;
      }
      stream_->send_status(true);
    }
  }

  // WAL that a desktop transaction still open has written can sit in a
  // partly filled page the server flushes only when something commits or
  // the page fills; the stream cannot pass what is not flushed, so a batch
  // would wait out its drain and be read without key lists. A commit of our
  // own flushes it: an empty transaction with an id (no row written; the
  // stream skips it as empty). Best effort: without it the batch only waits.
  void flush_desktop_wal() {
    try {
      desktop().exec("BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_catalog.txid_current(); COMMIT");
    } catch (const pg::Error& e) {
      out_.warning(std::string("could not flush the desktop's WAL for the stream: ") + e.what());
      desktop_.reset();  // (its transaction may be left open: the next use connects afresh)
    }
  }

  // A sync that may use the kept target session. The kept session, closed while the follower waited
  // (decision 0014), is dropped before the sync uses it: the sync connects, takes the run lock and resolves
  // its plan as a first batch does, at once. Not a failed attempt: nothing of it had begun. (A failed
  // reconnection is one.)
  report::RunSummary sync_with_kept_session(const run::SyncOptions& so) {
    std::optional<std::string> closed = kept_.forget_if_closed();
    report::RunSummary s = run::run_sync(cfg_, so, quiet_);
    if (closed) out_.info("the kept target session was closed while idle (" + *closed + "); reconnected");
    return s;
  }

  // One batch: the transactions the sync's snapshot shows, applied by that
  // sync, which reads only the keys they name where it can (ChangedKeys).
  void batch() {
    Lsn last;
    int64_t transactions = 0;
    int64_t changes = 0;
    std::string unlisted;  // why the batch was read without key lists
    run::SyncOptions so = o_.batch;
    so.mode = "incremental";
    so.no_retry = true;
    so.session.lock_wait_seconds = std::max(o_.lock_wait_seconds, 30.0);
    so.session.keep = &kept_;
    so.session.configure_source = in_snapshot(
        "", [&](pg::Connection& c, const plan::SyncPlan& plan) -> std::optional<source::KeyLists> {
          DesktopSnapshot snap = DesktopSnapshot::read(c);
          ChangedKeys keys(plan, logical::read_identities(c, ChangedKeys::relations(plan)), last_run_);
          bool drained = false;
          if (!held_) held_ = next_until(snap.wal_insert, drained);  // (a batch of no transaction so far)
          while (held_ && snap.shows(held_->xid)) {
            last = held_->end_lsn;
            ++transactions;
            changes += static_cast<int64_t>(held_->changes.size());
            keys.add(*held_);
            held_ = next_until(snap.wal_insert, drained);
          }
          // The lists are exact when every transaction the snapshot shows was
          // taken: the stream reached the snapshot's WAL position, or stopped
          // at a transaction whose commit ends after it (and so after the
          // snapshot). Else (a transaction not drained in time, a commit
          // racing the snapshot) the batch is read as an incremental run.
          if (held_ ? held_->end_lsn <= snap.wal_insert : !drained) {
            unlisted = "the stream did not show every transaction of the batch's snapshot in time";
            return std::nullopt;
          }
          source::KeyLists lists = keys.lists();
          for (size_t i = 0; o_.capture && i < lists.size(); ++i) {
            if (cfg_.captures_logically(*plan.tables[i].config)) continue;
            lists[i] = source::KeyList{};
            lists[i].kind = source::KeyList::Kind::whole;
            lists[i].why = "incremental: { capture: snapshot }";
          }
          return lists;
        });
    so.record_in_commit = [&](pg::Pipeline& p, const std::string& run_id) {
      // (No transaction: the position stays, the run the stream follows is this one.)
      if (Lsn at = last.valid() ? last : applied_; at.valid()) record(p, at, run_id, false);
    };
    report::RunSummary s = sync_with_kept_session(so);
    if (last.valid()) {
      stream_->confirm(last);  // after COMMIT: the target holds everything up to `last`
      applied_ = last;
    }
    ++batches_;
    summary_.run_id = last_run_ = s.run_id;
    add_tables(s.tables);
    int64_t ins = 0, upd = 0, del = 0, by_key = 0, reconciled = 0;
    for (const auto& t : s.tables) {
      ins += t.counts.inserted;
      upd += t.counts.updated;
      del += t.counts.deleted;
      if (t.mode_used == "logical") ++by_key;
      if (t.mode_used == "cursor" || t.mode_used == "fingerprint" || t.mode_used == "full") ++reconciled;
    }
    out_.info("batch " + s.run_id + ": " + std::to_string(transactions) + " desktop transaction(s), " +
              std::to_string(changes) + " change(s); " + std::to_string(by_key) + " table(s) read by key, " +
              std::to_string(reconciled) + " reconciled" + (unlisted.empty() ? "" : " (" + unlisted + ")") +
              "; inserted " + std::to_string(ins) + ", updated " + std::to_string(upd) + ", deleted " +
              std::to_string(del) + "; target at " + applied_.str());
  }

  // A batch's table results into the summary's (one line per table, the counts of every batch added up).
  void add_tables(const std::vector<report::TableResult>& tables) {
    for (const auto& t : tables) {
      auto it = std::find_if(summary_.tables.begin(), summary_.tables.end(),
                             [&](const report::TableResult& s) { return s.target == t.target; });
      if (it == summary_.tables.end()) {
        summary_.tables.push_back(t);
        continue;
      }
      apply::TableCounts c = it->counts;
      *it = t;
      it->counts.read += c.read;
      it->counts.inserted += c.inserted;
      it->counts.updated += c.updated;
      it->counts.deleted += c.deleted;
      it->counts.seconds += c.seconds;
    }
  }

  // The slot's cost on the desktop's disk (follow.max_retained_wal); a lost slot throws SlotLost.
  void check_slot() {
    logical::SlotStatus st = logical::slot_status(desktop(), slot_);
    if (!st.exists)
      throw logical::SlotLost("replication slot " + slot_ + " is missing on the desktop", slot_,
                              logical::SlotLost::Reason::missing);
    if (st.invalidated())
      throw logical::SlotLost("replication slot " + slot_ + " was invalidated by the desktop server", slot_,
                              logical::SlotLost::Reason::invalidated);
    if (st.retained_bytes <= o_.max_retained_wal) return;
    out_.warning("REPLICATION SLOT DROPPED: " + slot_ + " held " + bytes(st.retained_bytes) +
                 " of WAL on the desktop's disk, more than follow.max_retained_wal (" + bytes(o_.max_retained_wal) +
                 "); a full sync in a new slot's snapshot follows");
    close_stream();
    drop_slot();
    state::forget_follow_state(target(), slot_);
    throw logical::SlotLost("replication slot " + slot_ + " dropped for its WAL", slot_,
                            logical::SlotLost::Reason::invalidated);
  }

  // Drops the slot, waiting for a walsender that still holds it to let go.
  void drop_slot() {
    auto deadline = Clock::now() + 30s;
    for (;;) {
      pg::Result r = desktop().exec("SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                                    std::vector<pg::Param>{slot_});
      if (r.rows() == 0) return;
      if (r.text(0, 0) != "t") {
        desktop().exec("SELECT pg_catalog.pg_drop_replication_slot($1)", std::vector<pg::Param>{slot_});
        return;
      }
      if (Clock::now() > deadline) {
        throw run::LockBusy("replication slot " + slot_ +
                            " is in use: stop the `stagesync follow` of this target and scope first");
      }
      std::this_thread::sleep_for(200ms);
      pg::throw_if_interrupted();
    }
  }

  void close_stream() {
    held_.reset();
    reader_.reset();
    stream_.reset();
  }

  void uninstall() {
    summary_.mode = "uninstall";
    bool existed = logical::slot_status(desktop(), slot_).exists;
    drop_slot();
    out_.info(existed ? "dropped replication slot " + slot_ + " on the desktop: it holds no WAL any more"
                      : "no replication slot " + slot_ + " on the desktop");
    state::forget_follow_state(target(), slot_);
    out_.info("follow state of " + slot_ + " removed from the target; the desktop application is not affected");
  }

  void apply_replica_identity() {
    summary_.mode = "replica-identity";
    if (cfg_.follow.replica_identity != "full") {
      throw run::Refused(
          "--apply-replica-identity changes the desktop's tables: it runs only when the configuration opts in with "
          "`follow: { replica_identity: full }` (see `stagesync check --follow` for what it would change)");
    }
    std::vector<logical::Relation> tables;
    for (const auto& t : cfg_.tables) {
      size_t dot = t.name.find('.');
      tables.push_back(dot == std::string::npos ? logical::Relation{"public", t.name}
                                                : logical::Relation{t.name.substr(0, dot), t.name.substr(dot + 1)});
    }
    auto changed = logical::set_replica_identity_full(desktop(), logical::read_identities(desktop(), tables));
    for (const auto& r : changed) out_.info("REPLICA IDENTITY FULL set on the desktop's " + r.schema + "." + r.name);
    if (changed.empty()) out_.info("every followed table's deletes already carry their old key: nothing changed");
  }

  // Without logical WAL: incremental syncs every interval.
  void poll() {
    summary_.mode = "polling";
    out_.warning("the desktop's wal_level is '" + desktop().exec("SHOW wal_level").text(0, 0) +
                 "', not 'logical': follow polls with `sync --mode incremental` every " +
                 std::to_string(o_.interval_seconds) + " s instead (`stagesync check --follow` says how to enable it)");
    desktop_.reset();
    for (;;) {
      run::SyncOptions so = o_.batch;
      so.mode = "incremental";
      so.session.lock_wait_seconds = o_.lock_wait_seconds;
      report::RunSummary s;
      if (!committed_before_stop([&] { s = run::run_sync(cfg_, so, quiet_); })) return;
      summary_.run_id = s.run_id;
      summary_.tables = s.tables;
      ++batches_;
      if (o_.once || pg::stop_requested()) return;
      auto until = Clock::now() + wait();
      while (Clock::now() < until) {
        if (pg::interrupted()) return;
        std::this_thread::sleep_for(50ms);
      }
    }
  }

  const config::Config& cfg_;
  const FollowOptions& o_;
  report::Reporter& out_;
  BatchReporter quiet_;
  std::optional<run::Backoff> backoff_;  // while a failure is being retried
  report::RunSummary summary_;
  std::set<std::string> followed_;
  std::string slot_;
  std::unique_ptr<pg::Connection> target_;
  std::unique_ptr<pg::Connection> desktop_;
  std::unique_ptr<logical::ReplicationConnection> stream_;
  std::unique_ptr<logical::TransactionReader> reader_;
  std::optional<logical::Transaction> held_;
  Lsn applied_;
  std::string last_run_;  // the run the target's follow state names: batches' key lists start there
  // The target session (holding the run lock) and plan of the last batch
  // that succeeded, for the next one (decision 0014). Closed when the
  // follower returns or a batch fails.
  run::KeptTarget kept_;
  int64_t batches_ = 0;
};

}  // namespace

std::string slot_name(const pg::Connection& target, const config::Config& cfg) {
  // FNV-1a: the same name from every build and platform.
  uint32_t h = 2166136261u;
  for (unsigned char ch : target.describe() + "|" + run::scope_key(cfg)) {
    h ^= ch;
    h *= 16777619u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "stagesync_%08x", h);
  return buf;
}

report::RunSummary run_follow(const config::Config& cfg, const FollowOptions& options, report::Reporter& out) {
  return Follower(cfg, options, out).run();
}

}  // namespace stagesync::follow
