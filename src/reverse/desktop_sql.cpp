#include "reverse/desktop_sql.h"

#include "pg/sql.h"

namespace stagesync::reverse {
namespace {

std::string lit(const std::string& s) { return pg::text_literal(s); }

// The actions that write a desktop row's values (their values are checked first).
const char* kWrites = "s.ss_action IN ('insert', 'update', 'update-any')";

std::vector<std::string> write_names(const EntryPlan& e) {
  std::vector<std::string> out;
  for (const auto& w : e.writes) out.push_back(w.column.name);
  return out;
}

// The written values over staged alias s, named w1, w2, ...
std::string value_list(const EntryPlan& e, bool named) {
  std::vector<std::string> out;
  for (size_t i = 0; i < e.writes.size(); ++i) {
    out.push_back(e.writes[i].value + (named ? " AS w" + std::to_string(i + 1) : ""));
  }
  return pg::join(out, ", ");
}

}  // namespace

std::string temp_table(size_t n) { return "pg_temp.stagesync_rv_" + std::to_string(n); }

std::string staged_rows_sql(const EntryPlan& e, const std::string& window) {
  std::vector<std::string> cols, nulls;
  for (const auto& c : e.staged) {
    cols.push_back("t." + pg::ident(c.name));
    nulls.push_back("NULL");
  }
  std::string key = e.cloud_key("t");
  std::string not_null;
  for (const auto& k : e.key) not_null += " AND t." + pg::ident(k) + " IS NOT NULL";
  std::string id = lit(e.id);
  // Changed or new rows in the window, and keys that collided earlier (retried every run) ...
  std::string changed = "SELECT 'u', " + key + ", " + e.mobile_hash("t") + ", b.desktop_hash, " + pg::join(cols, ", ") +
                        " FROM " + e.cloud.qualified_name() +
                        " t LEFT JOIN stagesync.reverse_rows b ON b.entry = " + id + " AND b.key = " + key + " WHERE " +
                        e.rows_filter + not_null + " AND ((" + window +
                        ") OR (b.key IS NOT NULL AND b.desktop_hash IS NULL)) AND (b.key IS NULL OR "
                        "b.desktop_hash IS NULL OR b.mobile_hash IS DISTINCT FROM " +
                        e.mobile_hash("t") + ")";
  // ... and keys reverse copied whose mobile row is gone (or no longer selected), found in the target itself.
  std::string gone = "SELECT 'd', b.key, '', b.desktop_hash, " + pg::join(nulls, ", ") +
                     " FROM stagesync.reverse_rows b WHERE b.entry = " + id +
                     " AND b.mobile_hash <> '' AND NOT EXISTS (SELECT 1 FROM " + e.cloud.qualified_name() +
                     " t WHERE " + key + " = b.key AND " + e.rows_filter + ")";
  return changed + " UNION ALL " + gone;
}

std::string temp_ddl(const EntryPlan& e, size_t n) {
  std::string ddl = "CREATE TEMPORARY TABLE " + temp_table(n).substr(8) +
                    " (ss_op char(1), ss_key text[], ss_mobile_hash text, ss_desktop_hash text";
  for (const auto& c : e.staged) ddl += ", " + pg::ident(c.name) + " " + c.type;
  ddl +=
      ", ss_n_key bigint NOT NULL DEFAULT 0, ss_n_ours bigint NOT NULL DEFAULT 0, ss_action text, "
      "ss_conflict boolean NOT NULL DEFAULT false) ON COMMIT DROP";
  return ddl;
}

std::string copy_in_sql(const EntryPlan& e, size_t n) {
  std::vector<std::string> cols{"ss_op", "ss_key", "ss_mobile_hash", "ss_desktop_hash"};
  for (const auto& c : e.staged) cols.push_back(c.name);
  return "COPY " + temp_table(n) + " (" + pg::column_list(cols) + ") FROM STDIN";
}

std::vector<std::string> desktop_setup(const std::vector<const EntryPlan*>& staged_entries) {
  std::vector<std::string> out{
      "BEGIN ISOLATION LEVEL READ COMMITTED",
      // A desktop row the application holds locked is waited for this long, then the run fails and is retried.
      "SET LOCAL lock_timeout = '10s'",
      // Set-based: hash joins of the staged rows with the desktop table, never a scan per row.
      "SET LOCAL enable_nestloop = off",
      "CREATE TEMPORARY TABLE stagesync_book (entry text, key text[], mobile_hash text, desktop_hash text, op "
      "char(1)) ON COMMIT DROP",
      // Whether the desktop type's input accepts a value (PostgreSQL 15 has no pg_input_is_valid()).
      // Temporary: it goes with the session.
      "CREATE OR REPLACE FUNCTION pg_temp.stagesync_accepts(v text, t text) RETURNS boolean LANGUAGE plpgsql AS "
      "$f$ BEGIN IF v IS NULL THEN RETURN true; END IF; EXECUTE pg_catalog.format('SELECT %L::%s', v, t); "
      "RETURN true; EXCEPTION WHEN others THEN RETURN false; END $f$"};
  for (size_t n = 0; n < staged_entries.size(); ++n) {
    if (staged_entries[n]) out.push_back(temp_ddl(*staged_entries[n], n));
  }
  return out;
}

std::vector<std::string> classify_sql(const EntryPlan& e, size_t n) {
  const config::Reverse& r = *e.config;
  bool propagate = r.deletes == "propagate";
  std::string t = temp_table(n);
  std::string on_update = r.conflicts == "desktop-wins" ? "'keep-desktop'"
                          : r.conflicts == "fail"
                              ? "'conflict-fail'"
                              : "CASE WHEN ss_n_key = 0 THEN 'insert' WHEN ss_n_key = 1 THEN 'update-any' ELSE "
                                "'ambiguous' END";
  std::string on_delete = !propagate                      ? "'keep-deleted'"
                          : r.conflicts == "desktop-wins" ? "'keep-deleted'"
                          : r.conflicts == "fail"
                              ? "'conflict-fail'"
                              : "CASE WHEN ss_n_key = 0 THEN 'forget' WHEN ss_n_key = 1 THEN 'delete-any' ELSE "
                                "'ambiguous' END";
  return {
      "ANALYZE " + t,
      "UPDATE " + t +
          " s SET ss_n_key = m.n_key, ss_n_ours = m.n_ours FROM (SELECT x.ss_key AS k, count(*) AS n_key, "
          "count(*) FILTER (WHERE x.ss_desktop_hash IS NOT NULL AND " +
          e.desktop_hash("d") + " = x.ss_desktop_hash) AS n_ours FROM " + t + " x JOIN " + e.desktop.qualified_name() +
          " d ON " + e.desktop_key_array("d") + " = x.ss_key GROUP BY x.ss_key) m WHERE m.k = s.ss_key",
      "UPDATE " + t + " SET ss_conflict = ss_desktop_hash IS NOT NULL AND ss_n_ours = 0 AND (ss_op = 'u' OR " +
          (propagate ? "true" : "false") +
          "), ss_action = CASE "
          "WHEN ss_op = 'u' AND ss_desktop_hash IS NULL THEN CASE WHEN ss_n_key = 0 THEN 'insert' ELSE 'collision' END "
          "WHEN ss_op = 'u' AND ss_n_ours > 0 THEN 'update' "
          "WHEN ss_op = 'u' THEN " +
          on_update +
          " "
          "WHEN ss_desktop_hash IS NULL THEN 'forget' "
          "WHEN ss_n_ours > 0 THEN " +
          (propagate ? "'delete'" : "'keep-deleted'") +
          " "
          "ELSE " +
          on_delete + " END",
  };
}

std::string refused_values_sql(const EntryPlan& e, size_t n) {
  std::vector<std::string> checks;
  std::string from = " FROM " + temp_table(n) + " s WHERE " + kWrites + " AND ";
  for (const auto& w : e.writes) {
    std::string col = lit(w.column.name);
    std::string text = "(" + w.raw + ")::text";
    if (w.column.not_null) {
      checks.push_back("SELECT " + col + ", 'NULL into a NOT NULL column', s.ss_key, NULL::text" + from + "(" +
                       w.value + ") IS NULL");
    }
    if (w.column.max_length > 0) {
      checks.push_back("SELECT " + col + ", 'longer than the column''s " + std::to_string(w.column.max_length) +
                       " characters (' || pg_catalog.length(" + text + ") || ')', s.ss_key, pg_catalog.left(" + text +
                       ", 200)" + from + "pg_catalog.length(" + text + ") > " + std::to_string(w.column.max_length));
    }
    if (w.check_input) {
      checks.push_back("SELECT " + col + ", " + lit("not a valid " + w.column.type) + ", s.ss_key, pg_catalog.left(" +
                       text + ", 200)" + from + "NOT pg_temp.stagesync_accepts(" + text + ", " + lit(w.column.type) +
                       ")");
    }
  }
  if (checks.empty()) return "";
  return "SELECT c, why, k::text, v, count(*) OVER () FROM (" + pg::join(checks, " UNION ALL ") +
         ") x(c, why, k, v) LIMIT 10";
}

std::string duplicate_keys_sql(size_t n) {
  return "SELECT ss_key::text, count(*) OVER () FROM " + temp_table(n) + " GROUP BY ss_key HAVING count(*) > 1 LIMIT 5";
}

std::string action_counts_sql(size_t n) {
  return "SELECT ss_action, count(*), count(*) FILTER (WHERE ss_conflict), "
         "pg_catalog.array_to_string((pg_catalog.array_agg(ss_key::text ORDER BY ss_key))[1:3], ' ') FROM " +
         temp_table(n) + " GROUP BY ss_action";
}

std::string missed_writes_sql(const EntryPlan& e, size_t n) {
  return "SELECT count(*) FROM " + temp_table(n) +
         " s WHERE s.ss_action IN ('update', 'update-any', 'delete', 'delete-any') AND NOT EXISTS (SELECT 1 FROM " +
         kBookTable + " b WHERE b.entry = " + lit(e.id) + " AND b.key = s.ss_key)";
}

std::vector<std::string> apply_sql(const EntryPlan& e, size_t n) {
  std::string t = temp_table(n);
  std::string id = lit(e.id);
  std::string desk = e.desktop.qualified_name();
  std::string book = std::string("INSERT INTO ") + kBookTable + " (entry, key, mobile_hash, desktop_hash, op) ";
  std::vector<std::string> names = write_names(e);
  std::vector<std::string> sets;
  for (size_t i = 0; i < names.size(); ++i) sets.push_back(pg::ident(names[i]) + " = v.w" + std::to_string(i + 1));
  return {
      // Deletes: only the desktop row reverse wrote (same key and the row hash it recorded), or the one edited row.
      "WITH w AS (DELETE FROM " + desk + " d USING " + t + " s WHERE s.ss_action IN ('delete', 'delete-any') AND " +
          e.desktop_key_array("d") + " = s.ss_key AND (s.ss_action = 'delete-any' OR " + e.desktop_hash("d") +
          " = s.ss_desktop_hash) RETURNING s.ss_key) " + book + "SELECT DISTINCT " + id +
          ", ss_key, '', NULL::text, 'd' FROM w",
      book + "SELECT " + id + ", ss_key, '', NULL, 'd' FROM " + t + " WHERE ss_action = 'forget'",
      book + "SELECT " + id + ", ss_key, '', ss_desktop_hash, 'k' FROM " + t + " WHERE ss_action = 'keep-deleted'",
      // Updates: the same rows, set to the mobile values; the row as written is hashed from RETURNING.
      "WITH w AS (UPDATE " + desk + " AS d SET " + pg::join(sets, ", ") +
          " FROM (SELECT s.ss_key, s.ss_mobile_hash, s.ss_desktop_hash, s.ss_action, " + value_list(e, true) +
          " FROM " + t + " s WHERE s.ss_action IN ('update', 'update-any')) v WHERE " + e.desktop_key_array("d") +
          " = v.ss_key AND (v.ss_action = 'update-any' OR " + e.desktop_hash("d") +
          " = v.ss_desktop_hash) RETURNING v.ss_key, v.ss_mobile_hash, " + e.desktop_hash("d") + " AS h) " + book +
          "SELECT DISTINCT ON (ss_key) " + id + ", ss_key, ss_mobile_hash, h, 'u' FROM w",
      "WITH w AS (INSERT INTO " + desk + " AS d (" + pg::column_list(names) + ") SELECT " + value_list(e, false) +
          " FROM " + t + " s WHERE s.ss_action = 'insert' RETURNING " + e.desktop_key_array("d") + " AS k, " +
          e.desktop_hash("d") + " AS h) " + book + "SELECT DISTINCT ON (w.k) " + id +
          ", w.k, s.ss_mobile_hash, w.h, 'u' FROM w JOIN " + t + " s ON s.ss_key = w.k",
      // desktop-wins: the desktop row stays as it is; the mobile image is recorded so the conflict is reported once.
      book + "SELECT " + id + ", ss_key, ss_mobile_hash, ss_desktop_hash, 'u' FROM " + t +
          " WHERE ss_action = 'keep-desktop'",
      // A collision is recorded without a desktop hash: retried (and reported) every run, never taken as ours.
      book + "SELECT " + id + ", ss_key, ss_mobile_hash, NULL, 'u' FROM " + t + " WHERE ss_action = 'collision'",
  };
}

}  // namespace stagesync::reverse
