#include "source/sqlite/fingerprint_cache.h"

#include <stdexcept>

namespace stagesync::source::sqlite_source {

struct FingerprintCache::Statements {
  sqlite3_stmt* add = nullptr;
  sqlite3_stmt* scan = nullptr;
  sqlite3_stmt* wanted = nullptr;
  sqlite3_stmt* add_parent = nullptr;
  sqlite3_stmt* parent = nullptr;
  ~Statements() {
    sqlite3_finalize(add_parent);
    sqlite3_finalize(parent);
    sqlite3_finalize(add);
    sqlite3_finalize(scan);
    sqlite3_finalize(wanted);
  }
};

namespace {

// Sum modulo 2^62 of two fingerprints below 2^62: no 64-bit overflow.
const char* const kCombine = "(fp + excluded.fp) % 4611686018427387904";

}  // namespace

FingerprintCache::FingerprintCache(const std::string& path) : path_(path), st_(std::make_unique<Statements>()) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("fingerprint cache " + path + ": cannot open: " + why);
  }
  sqlite3_busy_timeout(db_, 10000);
  // WAL with synchronous NORMAL: a commit costs no fsync. A power cut may lose
  // the last commit, leaving the cache behind the target: safe (see the header).
  exec("PRAGMA journal_mode = WAL");
  exec("PRAGMA synchronous = NORMAL");
  // A larger page cache than SQLite's 2 MB default (bounded: 8 MB) keeps a
  // run's comparison of a large table's keys off the temporary file.
  exec("PRAGMA cache_size = -8192");
  exec("CREATE TABLE IF NOT EXISTS tables (name TEXT PRIMARY KEY, run_id TEXT NOT NULL, source TEXT NOT NULL)");
  exec("CREATE TABLE IF NOT EXISTS rows (tbl TEXT NOT NULL, key BLOB NOT NULL, fp INTEGER NOT NULL, "
       "PRIMARY KEY (tbl, key)) WITHOUT ROWID");
  exec("CREATE TABLE IF NOT EXISTS digests (name TEXT PRIMARY KEY, digest TEXT NOT NULL)");
  exec("CREATE TEMP TABLE cur (key BLOB PRIMARY KEY, fp INTEGER NOT NULL) WITHOUT ROWID");
  exec("CREATE TEMP TABLE want (tbl TEXT NOT NULL, key BLOB NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID");
  exec("CREATE TEMP TABLE gone (tbl TEXT NOT NULL, key BLOB NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID");
  st_->add = prepare(std::string("INSERT INTO rows (tbl, key, fp) VALUES (?1, ?2, ?3) ON CONFLICT (tbl, key) DO "
                                 "UPDATE SET fp = ") +
                     kCombine);
  st_->scan =
      prepare(std::string("INSERT INTO cur (key, fp) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET fp = ") + kCombine);
  st_->wanted = prepare("SELECT 1 FROM want WHERE tbl = ?1 AND key = ?2");
  exec("CREATE TEMP TABLE parents (ref INTEGER NOT NULL, vals BLOB NOT NULL, PRIMARY KEY (ref, vals)) WITHOUT ROWID");
  st_->add_parent = prepare("INSERT OR IGNORE INTO parents (ref, vals) VALUES (?1, ?2)");
  st_->parent = prepare("SELECT 1 FROM parents WHERE ref = ?1 AND vals = ?2");
}

FingerprintCache::~FingerprintCache() {
  rollback();
  st_.reset();
  sqlite3_close(db_);
}

sqlite3_stmt* FingerprintCache::prepare(const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    throw std::runtime_error("fingerprint cache " + path_ + ": " + sqlite3_errmsg(db_));
  }
  return s;
}

void FingerprintCache::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw std::runtime_error("fingerprint cache " + path_ + ": " + why);
  }
}

namespace {

void step_done(sqlite3* db, sqlite3_stmt* s, const std::string& path) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw std::runtime_error("fingerprint cache " + path + ": " + sqlite3_errmsg(db));
  }
}

void bind_key(sqlite3_stmt* s, int i, const std::string& key) {
  sqlite3_bind_blob(s, i, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
}

}  // namespace

void FingerprintCache::begin() {
  rollback();
  exec("BEGIN IMMEDIATE");
  open_ = true;
  exec("DELETE FROM want");
  exec("DELETE FROM gone");
  exec("DELETE FROM parents");
}

bool FingerprintCache::valid_for(const std::string& table, const std::string& run_id, const std::string& source) {
  sqlite3_stmt* s = prepare("SELECT run_id = ?2 AND source = ?3 FROM tables WHERE name = ?1");
  sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, run_id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 3, source.c_str(), -1, SQLITE_TRANSIENT);
  bool valid = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 1;
  sqlite3_finalize(s);
  return valid && !run_id.empty();
}

void FingerprintCache::reset(const std::string& table) {
  sqlite3_stmt* s = prepare("DELETE FROM rows WHERE tbl = ?1");
  sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  step_done(db_, s, path_);
  sqlite3_finalize(s);
}

void FingerprintCache::add(const std::string& table, const std::string& key, int64_t fingerprint) {
  sqlite3_bind_text(st_->add, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  bind_key(st_->add, 2, key);
  sqlite3_bind_int64(st_->add, 3, fingerprint);
  step_done(db_, st_->add, path_);
}

void FingerprintCache::start_scan() { exec("DELETE FROM cur"); }

void FingerprintCache::scan(const std::string& key, int64_t fingerprint) {
  bind_key(st_->scan, 1, key);
  sqlite3_bind_int64(st_->scan, 2, fingerprint);
  step_done(db_, st_->scan, path_);
}

FingerprintCache::Difference FingerprintCache::compare(const std::string& table) {
  Difference d;
  sqlite3_stmt* s = prepare(
      "INSERT INTO want (tbl, key) SELECT ?1, c.key FROM cur c LEFT JOIN rows r ON r.tbl = ?1 AND r.key = c.key "
      "WHERE r.fp IS NOT c.fp");
  sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  step_done(db_, s, path_);
  sqlite3_finalize(s);
  d.wanted = sqlite3_changes(db_);
  s = prepare("INSERT INTO gone (tbl, key) SELECT ?1, r.key FROM rows r WHERE r.tbl = ?1 AND NOT EXISTS "
              "(SELECT 1 FROM cur c WHERE c.key = r.key)");
  sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  step_done(db_, s, path_);
  sqlite3_finalize(s);
  d.deleted = sqlite3_changes(db_);
  return d;
}

bool FingerprintCache::wanted(const std::string& table, const std::string& key) {
  sqlite3_bind_text(st_->wanted, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  bind_key(st_->wanted, 2, key);
  bool found = sqlite3_step(st_->wanted) == SQLITE_ROW;
  sqlite3_reset(st_->wanted);
  return found;
}

void FingerprintCache::for_each_deleted(const std::string& table, void (*f)(void*, const char*, int), void* ctx) {
  sqlite3_stmt* s = prepare("SELECT key FROM gone WHERE tbl = ?1");
  sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(s) == SQLITE_ROW) {
    f(ctx, static_cast<const char*>(sqlite3_column_blob(s, 0)), sqlite3_column_bytes(s, 0));
  }
  sqlite3_finalize(s);
}

void FingerprintCache::record_changes(const std::string& table) {
  for (const char* sql : {"DELETE FROM rows WHERE tbl = ?1 AND key IN (SELECT key FROM gone WHERE tbl = ?1)",
                          "INSERT OR REPLACE INTO rows (tbl, key, fp) SELECT ?1, c.key, c.fp FROM cur c "
                          "WHERE c.key IN (SELECT key FROM want WHERE tbl = ?1)"}) {
    sqlite3_stmt* s = prepare(sql);
    sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
    step_done(db_, s, path_);
    sqlite3_finalize(s);
  }
}

void FingerprintCache::add_parent_value(int reference, const std::string& values) {
  sqlite3_bind_int(st_->add_parent, 1, reference);
  bind_key(st_->add_parent, 2, values);
  step_done(db_, st_->add_parent, path_);
}

bool FingerprintCache::parent_value(int reference, const std::string& values) {
  sqlite3_bind_int(st_->parent, 1, reference);
  bind_key(st_->parent, 2, values);
  bool found = sqlite3_step(st_->parent) == SQLITE_ROW;
  sqlite3_reset(st_->parent);
  return found;
}

std::string FingerprintCache::digest(const std::string& table) {
  sqlite3_stmt* s = prepare("SELECT digest FROM digests WHERE name = ?1");
  sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  std::string out;
  if (sqlite3_step(s) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  return out;
}

void FingerprintCache::set_digest(const std::string& table, const std::string& digest) {
  sqlite3_stmt* s = prepare("INSERT OR REPLACE INTO digests (name, digest) VALUES (?1, ?2)");
  sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, digest.c_str(), -1, SQLITE_TRANSIENT);
  step_done(db_, s, path_);
  sqlite3_finalize(s);
}

void FingerprintCache::mark(const std::string& table, const std::string& run_id, const std::string& source) {
  sqlite3_stmt* s = prepare("INSERT OR REPLACE INTO tables (name, run_id, source) VALUES (?1, ?2, ?3)");
  sqlite3_bind_text(s, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, run_id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 3, source.c_str(), -1, SQLITE_TRANSIENT);
  step_done(db_, s, path_);
  sqlite3_finalize(s);
}

void FingerprintCache::commit() {
  if (!open_) return;
  exec("COMMIT");
  open_ = false;
}

void FingerprintCache::rollback() noexcept {
  if (!open_) return;
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  open_ = false;
}

}  // namespace stagesync::source::sqlite_source
