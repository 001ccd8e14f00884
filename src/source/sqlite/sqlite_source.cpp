#include "source/sqlite/sqlite_source.h"

#include <chrono>
#include <cstring>
#include <filesystem>

#include "delta/deletions.h"
#include "pg/sql.h"
#include "source/sqlite/row_reader.h"
#include "source/stage_run.h"
#include "sqlite/catalog.h"
#include "sqlite/snapshot.h"
#include "stage/copy_chain.h"

namespace stagesync::source::sqlite_source {
namespace {

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Rows written to a COPY in chunks of about this many bytes.
constexpr size_t kChunk = 1 << 16;

// Writes `line`s into `in` in chunks.
class ChunkedCopy {
 public:
  explicit ChunkedCopy(pg::CopyIn& in) : in_(in) { buf_.reserve(kChunk + 4096); }
  void add(const std::string& line) {
    buf_ += line;
    if (buf_.size() >= kChunk) flush();
  }
  int64_t finish() {
    flush();
    return in_.finish();
  }

 private:
  void flush() {
    if (!buf_.empty()) in_.write(buf_);
    buf_.clear();
  }
  pg::CopyIn& in_;
  std::string buf_;
};

std::string absolute(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(std::filesystem::absolute(path), ec);
  return ec ? path : p.string();
}

}  // namespace

std::string default_cache_path(const std::string& config_path) {
  std::string base = config_path.empty() ? "stagesync" : config_path;
  for (const char* ext : {".yaml", ".yml"}) {
    size_t n = std::strlen(ext);
    if (base.size() > n && base.compare(base.size() - n, n, ext) == 0) {
      base.resize(base.size() - n);
      break;
    }
  }
  return base + ".fingerprints";
}

SqliteSource::SqliteSource(const config::Config& cfg, const std::string& cache_path)
    : cfg_(cfg),
      db_(std::make_unique<sqlite::Database>(cfg.source.sqlite)),
      identity_("sqlite:" + absolute(cfg.source.sqlite)),
      cache_(cache_path) {}

std::string SqliteSource::describe() const {
  return "SQLite file " + db_->path() + (db_->wal() ? " (WAL journal)" : " (rollback journal)");
}

catalog::Tables SqliteSource::read_tables(const std::vector<std::string>& names) {
  return sqlite::read_tables(*db_, names);
}

void SqliteSource::stage(StageRun& run) {
  cache_.begin();
  pending_run_ = run.run_id;
  pending_tables_.clear();
  // One consistent state of every table; the application keeps writing.
  sqlite::Snapshot snapshot(*db_);
  sqlite::Database& db = snapshot.reader();
  run.out.info("source: read from " + snapshot.how());
  stage::CopyChain chain;
  const std::string& tz = cfg_.source.timezone;
  for (size_t i : run.plan.selected()) {
    TableRun& r = run.tables[i];
    const plan::TablePlan& t = run.plan.tables[i];
    auto start = std::chrono::steady_clock::now();
    std::string last_run;
    std::optional<delta::Watermark> previous;
    if (auto prev = run.previous.find(t.target_name); prev != run.previous.end()) {
      previous = delta::from_json(prev->second.first);
      last_run = prev->second.second;
    }
    r.previous_rejects = previous && !previous->rejects_run.empty() ? previous->rejects_run : last_run;
    r.watermark = delta::Watermark{};
    r.watermark.source = identity_;
    r.watermark.rejects_run = run.run_id;
    pending_tables_.push_back(t.target_name);

    std::string full;
    if (!run.incremental) {
      full = "full mode requested";
    } else if (run.strategy != apply::Strategy::Merge) {
      full = "strategy " + apply::to_string(run.strategy) + " rewrites every owned row";
    } else if (last_run.empty()) {
      full = "no earlier successful run yet; this run records the rows' fingerprints";
    } else if (!cache_.valid_for(t.target_name, last_run, identity_)) {
      full = "no fingerprints on this machine (" + cache_.path() + ") from the table's last successful run " +
             last_run + "; this run records them";
    } else if (run.references_changed(t)) {
      full = "a table it references changed in this run: every row is judged again";
    } else if (r.collision_freed) {
      full = "a key set aside for a collision with a foreign row is free now";
    }
    if (!full.empty()) {
      r.method = delta::MethodChoice{delta::Method::Full, full, "", false};
      read_whole(run, i, chain, db);
      r.stage_seconds = since(start);
      continue;
    }

    // Fingerprints: every row fingerprinted here, compared with the last run's.
    // A table without a key has one fingerprint, the sum of its rows' (the
    // same whatever their order): it can only be proved unchanged, with the
    // row count the last run recorded, else it is read whole.
    bool keyed = t.keyed();
    cache_.start_scan();
    RowReader all(db, t, tz);
    while (all.next()) cache_.scan(keyed ? all.key() : std::string(), all.fingerprint());
    r.watermark.rows = all.rows();
    FingerprintCache::Difference d = cache_.compare(t.target_name);
    if (d.wanted == 0 && d.deleted == 0 && (keyed || (previous && previous->rows == all.rows()))) {
      run.mark_unchanged(i, delta::MethodChoice{delta::Method::Fingerprint,
                                                "fingerprints: nothing changed since the last run (every row's "
                                                "fingerprint as recorded)",
                                                "", false});
      r.stage_seconds = since(start);
      run.progress(i, 0, r.stage_seconds, true);
      continue;
    }
    if (!keyed) {
      r.method = delta::MethodChoice{delta::Method::Full,
                                     "key: none: rows have no identity to follow between runs, compared whole "
                                     "(their fingerprints differ from the last run's)",
                                     "", false};
      read_whole(run, i, chain, db);
      r.stage_seconds = since(start);
      continue;
    }
    if (d.wanted * 2 > all.rows()) {
      r.method = delta::MethodChoice{delta::Method::Full,
                                     "fingerprints: most keys changed (" + std::to_string(d.wanted) + " of " +
                                         std::to_string(all.rows()) + " rows), so the table is read whole",
                                     "", false};
      read_whole(run, i, chain, db);
      r.stage_seconds = since(start);
      continue;
    }
    r.method = delta::MethodChoice{delta::Method::Fingerprint,
                                   "fingerprints (SQLite has no transaction ids): " + std::to_string(d.wanted) +
                                       " new or changed key(s) read, " + std::to_string(d.deleted) + " deleted",
                                   "", false};
    cache_.record_changes(t.target_name);
    r.source_rows = all.rows();
    r.deletions = d.deleted;
    run.created.push_back(delta::deletions_table(run.target, *r.sql, run.run_id, i));
    r.sql->set_deletions(run.created.back());
    std::string table = t.target_name;
    chain.add(stage::CopyChain::Copy{
        [this, &db, &t, &tz, table, &run, i, start](pg::CopyIn& in) {
          ChunkedCopy out(in);
          RowReader rows(db, t, tz);
          int64_t sent = 0;
          while (rows.next()) {
            if (!cache_.wanted(table, rows.key())) continue;
            out.add(rows.line());
            if ((++sent & 0x3FFF) == 0) run.progress(i, sent, since(start), false);
          }
          return out.finish();
        },
        r.staging->copy_in("text"),
        {r.staging->analyze_sql()},
        [&r](int64_t rows, const std::vector<int64_t>&) { r.rows_read = rows; }});
    chain.add(stage::CopyChain::Copy{
        [this, table](pg::CopyIn& in) {
          ChunkedCopy out(in);
          cache_.deleted(table, [&](const std::string& key) { out.add(key + "\n"); });
          return out.finish();
        },
        "COPY " + r.sql->deletions() + " (" + pg::column_list(t.key) + ") FROM STDIN (FORMAT text)",
        {"ANALYZE " + r.sql->deletions()},
        nullptr});
    // The keys the previous run set aside that are not read again stay set
    // aside (copied as recorded), unless they were deleted.
    if (!r.previous_rejects.empty()) {
      std::vector<std::string> staged_same, deleted_same;
      for (const auto& k : t.key) {
        staged_same.push_back("s." + pg::ident(k) + " = " + r.sql->key_from_json("x.row_key", k));
        deleted_same.push_back("d." + pg::ident(k) + " = " + r.sql->key_from_json("x.row_key", k));
      }
      int64_t* carried = &r.carried_rejects;
      run.target.defer("INSERT INTO " + run.rejects +
                           " (table_name, row_key, column_name, reason) SELECT $1, x.row_key, x.column_name, "
                           "x.reason FROM stagesync.rejects x WHERE x.run_id = $2 AND x.table_name = $1 AND "
                           "x.row_key LIKE '{%' AND NOT EXISTS (SELECT 1 FROM " +
                           r.staging->qualified() + " s WHERE " + pg::join(staged_same, " AND ") +
                           ") AND NOT EXISTS (SELECT 1 FROM " + r.sql->deletions() + " d WHERE " +
                           pg::join(deleted_same, " AND ") + ")",
                       std::vector<pg::Param>{t.target_name, r.previous_rejects},
                       [carried](pg::Result& res) { *carried = res.affected(); });
    }
    r.stage_seconds = since(start);
  }
  auto start = std::chrono::steady_clock::now();
  chain.run(run.target);
  double shared = since(start);
  for (size_t i : run.plan.selected()) {
    TableRun& r = run.tables[i];
    if (r.unchanged) continue;
    r.stage_seconds += shared / static_cast<double>(run.plan.selected().size());
    run.progress(i, r.rows_read, r.stage_seconds, true);
  }
}

void SqliteSource::read_whole(StageRun& run, size_t i, stage::CopyChain& chain, sqlite::Database& db) {
  TableRun& r = run.tables[i];
  const plan::TablePlan& t = run.plan.tables[i];
  std::string table = t.target_name;
  bool keyed = t.keyed();  // without a key: one fingerprint, the sum of the rows'
  cache_.reset(table);
  auto start = std::chrono::steady_clock::now();
  chain.add(stage::CopyChain::Copy{
      [this, &db, &t, table, keyed, &run, i, start](pg::CopyIn& in) {
        ChunkedCopy out(in);
        RowReader rows(db, t, cfg_.source.timezone);
        while (rows.next()) {
          out.add(rows.line());
          cache_.add(table, keyed ? rows.key() : std::string(), rows.fingerprint());
          if ((rows.rows() & 0x3FFF) == 0) run.progress(i, rows.rows(), since(start), false);
        }
        return out.finish();
      },
      r.staging->copy_in("text"),
      {r.staging->analyze_sql()},
      [&r](int64_t rows, const std::vector<int64_t>&) { r.rows_read = r.source_rows = r.watermark.rows = rows; }});
}

void SqliteSource::committed(const std::string& run_id) noexcept {
  if (run_id != pending_run_) return;
  try {
    for (const auto& table : pending_tables_) cache_.mark(table, run_id, identity_);
    cache_.commit();
  } catch (const std::exception&) {
    // The cache stays at an earlier run: the next run reads these tables whole.
    cache_.rollback();
  }
  pending_run_.clear();
}

}  // namespace stagesync::source::sqlite_source
