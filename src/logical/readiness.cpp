#include "logical/readiness.h"

#include "logical/replication_connection.h"

namespace stagesync::logical {
namespace {

constexpr const char* kSettingsSql = R"(
SELECT current_setting('wal_level'), r.rolreplication, r.rolsuper, current_user, current_database(),
       current_setting('max_replication_slots')::int, (SELECT count(*) FROM pg_replication_slots),
       current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'),
       EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),
       host(inet_client_addr())
FROM pg_roles r WHERE r.rolname = current_user)";

}  // namespace

std::vector<ReadinessProblem> check_readiness(pg::Connection& conn, const ReadinessOptions& options) {
  std::vector<ReadinessProblem> problems;
  pg::Result r = conn.exec(kSettingsSql, std::vector<pg::Param>{options.slot_name});
  std::string wal_level = r.text(0, 0);
  bool replication_role = r.boolean(0, 1) || r.boolean(0, 2);
  bool superuser = r.boolean(0, 2);
  std::string user = r.text(0, 3);
  std::string database = r.text(0, 4);
  int64_t max_slots = r.int64(0, 5), slots = r.int64(0, 6);
  int64_t max_senders = r.int64(0, 7), senders = r.int64(0, 8);
  bool slot_exists = r.boolean(0, 9);
  std::optional<std::string> client = r.opt(0, 10);

  if (wal_level != "logical") {
    problems.push_back({"wal_level",
                        "wal_level is '" + wal_level + "' on " + conn.describe() + "; logical decoding needs 'logical'",
                        "set `wal_level = logical` in postgresql.conf (or, as a superuser, ALTER SYSTEM SET wal_level "
                        "= logical) and restart the server: a reload is not enough"});
  }
  if (!replication_role) {
    problems.push_back({"replication_role", "role " + user + " may not open replication connections",
                        "as a superuser: ALTER ROLE " + pg::ident(user) + " WITH REPLICATION;"});
  }
  if (!slot_exists && slots >= max_slots) {
    problems.push_back({"slots_exhausted",
                        "all " + std::to_string(max_slots) + " replication slots (max_replication_slots) are in use",
                        "raise max_replication_slots in postgresql.conf and restart the server, or drop a slot nobody "
                        "uses: SELECT pg_drop_replication_slot('name');"});
  }
  if (senders >= max_senders) {
    problems.push_back({"wal_senders_exhausted",
                        "all " + std::to_string(max_senders) + " WAL senders (max_wal_senders) are in use",
                        "raise max_wal_senders in postgresql.conf and restart the server"});
  }
  if (superuser) {
    try {
      conn.exec("LOAD " + conn.literal(options.plugin));
    } catch (const pg::Error& e) {
      if (e.is_connection_loss()) throw;
      problems.push_back({"plugin_missing",
                          "the logical decoding plugin " + options.plugin + " cannot be loaded: " + e.what(),
                          "install the server's contrib modules (Debian: postgresql-NN ships test_decoding; "
                          "RPM: postgresqlNN-contrib; the Windows installer includes them)"});
    }
  }
  if (!options.endpoint.conninfo.empty() && replication_role) {
    try {
      ReplicationConnection probe(options.endpoint);
      probe.identify_system();
    } catch (const pg::Error& e) {
      std::string what = e.what();
      if (what.find("pg_hba.conf") != std::string::npos) {
        std::string line = client ? "host    " + database + "    " + user + "    " + *client + "/32    scram-sha-256"
                                  : "local   " + database + "    " + user + "    scram-sha-256";
        problems.push_back({"replication_refused", "the server refuses a replication connection: " + what,
                            "add to pg_hba.conf, above other lines for this database, then reload (SELECT "
                            "pg_reload_conf()): `" +
                                line +
                                "` (a logical replication connection matches the "
                                "database column, not `replication`)"});
      } else {
        problems.push_back({"replication_failed", "a replication connection fails: " + what,
                            "see the server's message; max_wal_senders and the role's REPLICATION attribute are "
                            "checked above"});
      }
    }
  }
  return problems;
}

SlotStatus slot_status(pg::Connection& conn, const std::string& slot_name) {
  pg::Result r = conn.exec(
      "SELECT active, plugin, restart_lsn::text, confirmed_flush_lsn::text, wal_status, safe_wal_size, "
      "CASE WHEN restart_lsn IS NULL THEN 0 ELSE pg_wal_lsn_diff(pg_current_wal_insert_lsn(), restart_lsn)::bigint END "
      "FROM pg_replication_slots WHERE slot_name = $1",
      std::vector<pg::Param>{slot_name});
  SlotStatus s;
  if (r.rows() == 0) return s;
  s.exists = true;
  s.active = r.boolean(0, 0);
  if (!r.is_null(0, 1)) s.plugin = r.text(0, 1);
  if (!r.is_null(0, 2)) s.restart_lsn = Lsn::parse(r.get(0, 2));
  if (!r.is_null(0, 3)) s.confirmed_flush_lsn = Lsn::parse(r.get(0, 3));
  if (!r.is_null(0, 4)) s.wal_status = r.text(0, 4);
  if (!r.is_null(0, 5)) s.safe_wal_size = r.int64(0, 5);
  s.retained_bytes = r.int64(0, 6);
  return s;
}

}  // namespace stagesync::logical
