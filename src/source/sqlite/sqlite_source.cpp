#include "source/sqlite/sqlite_source.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "delta/deletions.h"
#include "pg/sql.h"
#include "source/sqlite/file_stamp.h"
#include "source/sqlite/row_reader.h"
#include "source/sqlite/stored_digest.h"
#include "source/stage_run.h"
#include "sqlite/catalog.h"
#include "sqlite/snapshot.h"
#include "stage/copy_chain.h"
#include "stage/staging_table.h"

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

// The key a row's fingerprint is kept under: a table without a key keeps one,
// the sum of all its rows' fingerprints.
const std::string& cache_key(const plan::TablePlan& t, const RowReader& row) {
  static const std::string kWhole;
  return t.keyed() ? row.key() : kWhole;
}

}  // namespace

std::string default_cache_path(const std::string& config_path) {
  return config::beside(config_path.empty() ? "stagesync" : config_path, ".fingerprints");
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
  references_.clear();
  read_whole_.assign(run.plan.tables.size(), false);
  // The file's stamp, before the snapshot: equal to the one a table's digest
  // was recorded with (and not racy), the file is untouched since (file_stamp.h).
  FileStamp stamp = FileStamp::of(db_->path());
  std::string trusted_stamp = stamp.racy ? std::string() : stamp.text;
  // One consistent state of every table; the application keeps writing.
  sqlite::Snapshot snapshot(*db_);
  sqlite::Database& db = snapshot.reader();
  run.out.info("source: read from " + snapshot.how());
  stage::CopyChain chain;
  const std::string& tz = cfg_.source.timezone;
  StoredDigest stored(db, tz);
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
    } else if (r.collision_freed) {
      full = "a key set aside for a collision with a foreign row is free now";
    }
    // The table proved unchanged (`why`), or read whole (`why`).
    auto unchanged = [&](const std::string& why) {
      run.mark_unchanged(i, delta::MethodChoice{delta::Method::Fingerprint,
                                                "fingerprints: nothing changed since the last run (" + why + ")", "",
                                                false});
      r.stage_seconds = since(start);
      run.progress(i, 0, r.stage_seconds, true);
    };
    auto whole = [&](const std::string& why) {
      r.method = delta::MethodChoice{delta::Method::Full, why, "", false};
      read_whole(run, i, chain, db);
      r.stage_seconds = since(start);
    };
    std::vector<int> as_child;  // references whose changed parents' children are read again
    if (full.empty()) full = follow_parents(run, i, as_child);
    // The stored values digested (one plain scan): equal to the last run's, the
    // table sends nothing, without a row converted or a key compared.
    // Recorded as "<file stamp>#<digest>". An untouched file needs no scan:
    // its digest is the recorded one, when the table is read the same way.
    std::string recorded = cache_.digest(t.target_name);
    size_t hash = recorded.rfind('#');
    std::string recorded_stamp = hash == std::string::npos ? "" : recorded.substr(0, hash);
    std::string recorded_digest = hash == std::string::npos ? "" : recorded.substr(hash + 1);
    std::string digest;
    int64_t rows = 0;
    bool untouched = false;
    if (full.empty() && !trusted_stamp.empty() && recorded_stamp == trusted_stamp &&
        recorded_digest.rfind(stored.shape(t), 0) == 0) {
      digest = recorded_digest;
      untouched = true;
      size_t at = digest.find('/') + 1;
      rows = std::stoll(digest.substr(at, digest.find(':', at) - at));
    } else {
      digest = stored.of(t);
      rows = stored.rows();
    }
    bool same_values = full.empty() && recorded_digest == digest;
    cache_.set_digest(t.target_name, trusted_stamp + "#" + digest);
    if (same_values && as_child.empty()) {
      r.watermark.rows = rows;
      unchanged(untouched ? "the file is untouched since, by its stamp" : "the stored values' digest as recorded");
      continue;
    }
    if (!full.empty()) {
      whole(full);
      continue;
    }

    // Fingerprints: every row fingerprinted here, compared with the last run's.
    // A table without a key has one fingerprint, of all its rows.
    cache_.start_scan();
    RowReader all(db, t, tz);
    while (all.next()) cache_.scan(cache_key(t, all), all.fingerprint());
    r.watermark.rows = all.rows();
    FingerprintCache::Difference d = cache_.compare(t.target_name);
    // A keyless table's one fingerprint is checked with the row count the last run recorded.
    if (d.wanted == 0 && d.deleted == 0 && as_child.empty() &&
        (t.keyed() || (previous && previous->rows == all.rows()))) {
      unchanged("every row's fingerprint as recorded");
      continue;
    }
    if (!t.keyed()) {
      whole("key: none: the table's fingerprint changed, so it is read and compared whole");
      continue;
    }
    if (d.wanted * 2 > all.rows()) {
      whole("fingerprints: most keys changed (" + std::to_string(d.wanted) + " of " + std::to_string(all.rows()) +
            " rows), so the table is read whole");
      continue;
    }
    r.method = delta::MethodChoice{delta::Method::Fingerprint,
                                   "fingerprints (SQLite has no transaction ids): " + std::to_string(d.wanted) +
                                       " new or changed key(s) read, " + std::to_string(d.deleted) + " deleted" +
                                       (as_child.empty() ? "" : ", and the children of changed parent rows"),
                                   "", false};
    cache_.record_changes(t.target_name);
    r.source_rows = all.rows();
    r.deletions = d.deleted;
    run.created.push_back(delta::deletions_table(run.target, *r.sql, run.run_id, i));
    r.sql->set_deletions(run.created.back());
    std::string table = t.target_name;
    chain.add(stage::CopyChain::Copy{
        [this, &db, &t, &tz, table, &run, i, start, as_child](pg::CopyIn& in) {
          ChunkedCopy out(in);
          RowReader rows(db, t, tz);
          int64_t sent = 0;
          while (rows.next()) {
            bool send = cache_.wanted(table, rows.key());
            for (size_t k = 0; !send && k < as_child.size(); ++k) {
              const Reference& ref = references_[static_cast<size_t>(as_child[k])];
              send = cache_.parent_value(as_child[k], rows.fields(ref.child_columns));
            }
            if (!send) continue;
            out.add(rows.line());
            note_parent_values(i, rows);
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
    // The keys set aside earlier that are not read again stay set aside where
    // they are (stagesync.set_aside, decision 0016); those read again or
    // deleted are released (the run's record takes them out of the set).
    if (!r.previous_rejects.empty()) {
      std::vector<std::string> staged_same, deleted_same;
      for (const auto& k : t.key) {
        staged_same.push_back("s." + pg::ident(k) + " = " + r.sql->key_from_json("x.row_key", k));
        deleted_same.push_back("d." + pg::ident(k) + " = " + r.sql->key_from_json("x.row_key", k));
      }
      r.set_aside_kept = true;
      int64_t* carried = &r.carried_rejects;
      run.target.defer(
          "WITH x AS (SELECT x.row_key, x.row_key LIKE '{%' AS keyed FROM stagesync.set_aside x WHERE "
          "x.table_name = $1), released AS (INSERT INTO " +
              stage::released_table(run.run_id) +
              " (table_name, row_key) SELECT $1, x.row_key FROM x WHERE CASE WHEN x.keyed THEN EXISTS "
              "(SELECT 1 FROM " +
              r.staging->qualified() + " s WHERE " + pg::join(staged_same, " AND ") + ") OR EXISTS (SELECT 1 FROM " +
              r.sql->deletions() + " d WHERE " + pg::join(deleted_same, " AND ") +
              ") ELSE true END RETURNING 1) SELECT (SELECT count(*) FROM x) - (SELECT count(*) FROM "
              "released)",
          std::vector<pg::Param>{t.target_name}, [carried](pg::Result& res) { *carried = res.int64(0, 0); });
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

std::string SqliteSource::follow_parents(StageRun& run, size_t i, std::vector<int>& as_child) {
  const plan::TablePlan& t = run.plan.tables[i];
  auto positions = [](const plan::TablePlan& table, const std::vector<std::string>& names, std::vector<int>& out) {
    for (const auto& name : names) {
      auto it = std::find_if(table.columns.begin(), table.columns.end(),
                             [&](const plan::StagedColumn& c) { return c.name == name; });
      if (it == table.columns.end()) return false;
      out.push_back(static_cast<int>(it - table.columns.begin()));
    }
    return true;
  };
  for (const auto& ref : t.references) {
    const TableRun& parent = run.tables.at(ref.parent);
    const plan::TablePlan& p = run.plan.tables.at(ref.parent);
    if (!parent.sql || parent.unchanged) continue;  // not in this run, or nothing changed
    if (read_whole_.at(ref.parent)) return "a table it references (" + p.name + ") is read whole in this run";
    Reference follow;
    follow.parent = ref.parent;
    if (!positions(t, ref.columns, follow.child_columns) || !positions(p, ref.parent_columns, follow.parent_columns)) {
      return "a reference to " + p.name + " names columns that are not synced: every row is judged again";
    }
    // Deleted parents: their referenced values are in their keys, or unknown here.
    std::vector<int> in_key;
    for (const auto& pc : ref.parent_columns) {
      auto k = std::find(p.key.begin(), p.key.end(), pc);
      if (k == p.key.end()) break;
      in_key.push_back(static_cast<int>(k - p.key.begin()));
    }
    int id = static_cast<int>(references_.size());
    bool unknown = false;
    cache_.deleted(p.target_name, [&](const std::string& key) {
      if (in_key.size() != ref.parent_columns.size()) {
        unknown = true;
        return;
      }
      std::vector<std::string_view> fields;
      size_t start = 0;
      for (size_t end; (end = key.find('\t', start)) != std::string::npos; start = end + 1)
        fields.push_back(std::string_view(key).substr(start, end - start));
      fields.push_back(std::string_view(key).substr(start));
      std::string values;
      for (size_t k = 0; k < in_key.size(); ++k) {
        if (k) values += '\t';
        values += fields.at(static_cast<size_t>(in_key[k]));
      }
      cache_.add_parent_value(id, values);
    });
    if (unknown) return "rows of " + p.name + " were deleted and the reference to it is not by its key";
    references_.push_back(std::move(follow));
    as_child.push_back(id);
  }
  return "";
}

void SqliteSource::note_parent_values(size_t table, const RowReader& row) {
  for (size_t id = 0; id < references_.size(); ++id) {
    if (references_[id].parent == table) {
      cache_.add_parent_value(static_cast<int>(id), row.fields(references_[id].parent_columns));
    }
  }
}

void SqliteSource::read_whole(StageRun& run, size_t i, stage::CopyChain& chain, sqlite::Database& db) {
  read_whole_.at(i) = true;
  TableRun& r = run.tables[i];
  const plan::TablePlan& t = run.plan.tables[i];
  std::string table = t.target_name;
  cache_.reset(table);
  auto start = std::chrono::steady_clock::now();
  chain.add(stage::CopyChain::Copy{
      [this, &db, &t, table, &run, i, start](pg::CopyIn& in) {
        ChunkedCopy out(in);
        RowReader rows(db, t, cfg_.source.timezone);
        while (rows.next()) {
          out.add(rows.line());
          cache_.add(table, cache_key(t, rows), rows.fingerprint());
          note_parent_values(i, rows);
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
