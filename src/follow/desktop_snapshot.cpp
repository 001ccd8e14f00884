#include "follow/desktop_snapshot.h"

#include <algorithm>
#include <stdexcept>

namespace stagesync::follow {
namespace {

uint64_t number(const std::string& text, const std::string& whole) {
  size_t used = 0;
  uint64_t v = 0;
  try {
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) throw std::invalid_argument("not a transaction snapshot: '" + whole + "'");
  return v;
}

}  // namespace

bool DesktopSnapshot::shows(uint32_t xid) const {
  // The full id: xmax's epoch, or the one before when the low half is above xmax's.
  uint64_t full = (xmax & ~uint64_t{0xFFFFFFFF}) | xid;
  if (full >= xmax && full >= (uint64_t{1} << 32)) full -= uint64_t{1} << 32;
  if (full < xmin) return true;
  if (full >= xmax) return false;
  return std::find(xip.begin(), xip.end(), full) == xip.end();
}

DesktopSnapshot DesktopSnapshot::parse(const std::string& text, logical::Lsn wal_insert) {
  DesktopSnapshot s;
  s.wal_insert = wal_insert;
  size_t a = text.find(':');
  size_t b = a == std::string::npos ? a : text.find(':', a + 1);
  if (b == std::string::npos) throw std::invalid_argument("not a transaction snapshot: '" + text + "'");
  s.xmin = number(text.substr(0, a), text);
  s.xmax = number(text.substr(a + 1, b - a - 1), text);
  std::string list = text.substr(b + 1);
  for (size_t from = 0; from < list.size();) {
    size_t comma = list.find(',', from);
    if (comma == std::string::npos) comma = list.size();
    s.xip.push_back(number(list.substr(from, comma - from), text));
    from = comma + 1;
  }
  return s;
}

DesktopSnapshot DesktopSnapshot::read(pg::Connection& desktop) {
  // txid_current_snapshot() (PostgreSQL 9.4 and later; pg_current_snapshot() from 13 is the same).
  pg::Result r = desktop.exec("SELECT pg_catalog.txid_current_snapshot()::text, pg_current_wal_insert_lsn()::text");
  return parse(r.text(0, 0), logical::Lsn::parse(r.text(0, 1)));
}

}  // namespace stagesync::follow
