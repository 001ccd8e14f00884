#include "init/connection_url.h"

#include <libpq-fe.h>

#include <cctype>

#include "config/config.h"

namespace stagesync::init {
namespace {

// Whether libpq reads a non-empty password from `conninfo`; nullopt when it cannot parse it.
std::optional<bool> has_password(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) return std::nullopt;
  bool found = false;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (std::string(o->keyword) == "password" && o->val && *o->val) found = true;
  }
  PQconninfoFree(opts);
  return found;
}

bool is_uri(const std::string& s) { return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0; }

std::string strip_uri(const std::string& s) {
  size_t start = s.find("://") + 3;
  size_t end = s.find_first_of("/?", start);
  std::string authority = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
  std::string rest = end == std::string::npos ? "" : s.substr(end);
  size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    size_t colon = authority.find(':');
    if (colon != std::string::npos && colon < at) authority.erase(colon, at - colon);
  }
  // ?a=1&password=x&b=2: drop the password parameter.
  size_t q = rest.find('?');
  if (q != std::string::npos) {
    std::string query = rest.substr(q + 1), kept;
    size_t pos = 0;
    while (pos <= query.size()) {
      size_t amp = query.find('&', pos);
      std::string item = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
      if (item.rfind("password=", 0) != 0 && !item.empty()) kept += (kept.empty() ? "" : "&") + item;
      if (amp == std::string::npos) break;
      pos = amp + 1;
    }
    rest = rest.substr(0, q) + (kept.empty() ? "" : "?" + kept);
  }
  return s.substr(0, start) + authority + rest;
}

// key=value conninfo: drop `password = value` (value plain or '...' with \' and \\ escapes).
std::string strip_keywords(const std::string& s) {
  std::string out;
  size_t i = 0, n = s.size();
  while (i < n) {
    size_t item = i;
    while (i < n && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t key_start = i;
    while (i < n && s[i] != '=' && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::string key = s.substr(key_start, i - key_start);
    while (i < n && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i < n && s[i] == '=') ++i;
    while (i < n && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i < n && s[i] == '\'') {
      for (++i; i < n && s[i] != '\''; ++i)
        if (s[i] == '\\' && i + 1 < n) ++i;
      if (i < n) ++i;
    } else {
      while (i < n && !std::isspace(static_cast<unsigned char>(s[i]))) {
        if (s[i] == '\\' && i + 1 < n) ++i;
        ++i;
      }
    }
    if (key != "password") out += s.substr(item, i - item);
  }
  size_t first = out.find_first_not_of(' ');
  return first == std::string::npos ? "" : out.substr(first);
}

}  // namespace

SafeUrl without_password(const std::string& conninfo, const std::string& side) {
  std::optional<bool> had = has_password(conninfo);
  if (!had) throw config::ConfigError({"--" + side + ": not a valid connection string (libpq URI or key=value)"});
  SafeUrl out{conninfo, *had};
  if (!*had) return out;
  out.url = is_uri(conninfo) ? strip_uri(conninfo) : strip_keywords(conninfo);
  std::optional<bool> left = has_password(out.url);
  if (!left || *left) {
    throw config::ConfigError({"--" + side +
                               ": the password could not be removed from the connection string; "
                               "give it without one and set PGPASSWORD (or use ~/.pgpass)"});
  }
  return out;
}

}  // namespace stagesync::init
