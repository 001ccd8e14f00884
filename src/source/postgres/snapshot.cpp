#include "source/postgres/snapshot.h"

#include "pg/sql.h"

namespace stagesync::source::postgres {

using delta::Watermark;

namespace {
constexpr int64_t kXidSpace = int64_t{1} << 32;  // 32-bit transaction ids
}  // namespace

std::string source_identity(pg::Connection& source) {
  pg::Result db = source.exec(
      "SELECT d.oid::text || '/' || d.datname FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()");
  std::string id = db.text(0, 0);
  try {
    pg::Result sys = source.exec("SELECT system_identifier::text FROM pg_catalog.pg_control_system()");
    if (sys.rows() == 1) id = sys.text(0, 0) + "/" + id;
  } catch (const pg::Error& e) {
    if (e.is_connection_loss()) throw;  // a refused call is fine: the database part still identifies it
  }
  return id;
}

Watermark current_snapshot(pg::Connection& source, const std::string& identity) {
  pg::Result r = source.exec(
      "SELECT pg_catalog.txid_snapshot_xmin(s), pg_catalog.txid_snapshot_xmax(s) "
      "FROM pg_catalog.txid_current_snapshot() s");
  Watermark w{r.int64(0, 0), r.int64(0, 1), identity, {}, -1, {}, -1};
  // age(x) is (stable id - x) as int32, the stable id fixed at its first use
  // in this transaction; measure it from a normal id (3 and up).
  int64_t probe = w.xmin % kXidSpace;
  if (probe >= 3) {
    int64_t a = source.exec("SELECT pg_catalog.age($1::text::xid)", std::vector<pg::Param>{std::to_string(probe)})
                    .int64(0, 0);
    if (a >= 0) w.age_base = (probe + a) % kXidSpace;
  }
  return w;
}

std::map<std::string, int64_t> lookup_rows(const plan::TablePlan& t, pg::Connection& source,
                                           const std::map<std::string, int64_t>& known) {
  std::map<std::string, int64_t> out;
  for (const auto& l : t.lookups) {
    std::string name = l.from.qualified_name();
    if (out.count(name)) continue;
    auto k = known.find(name);
    out[name] = k != known.end() ? k->second : source.exec("SELECT count(*) FROM " + name).int64(0, 0);
  }
  return out;
}

std::string lookup_changes(pg::Connection& source, const Watermark& since, const Watermark& now) {
  std::string why;
  std::optional<std::string> window = delta::changed_since(since, now, why);
  if (!window) return why;
  for (const auto& [name, rows] : now.lookup_rows) {
    auto before = since.lookup_rows.find(name);
    if (before == since.lookup_rows.end()) return "lookup table " + name + " was not counted by the last run";
    if (before->second != rows) return "lookup table " + name + " changed since the last run (row count)";
    if (source.exec("SELECT EXISTS (SELECT 1 FROM " + name + " t WHERE " + *window + ")").boolean(0, 0)) {
      return "lookup table " + name + " changed since the last run";
    }
  }
  return "";
}

}  // namespace stagesync::source::postgres
