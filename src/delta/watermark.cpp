#include "delta/watermark.h"

#include <nlohmann/json.hpp>

namespace stagesync::delta {
namespace {
constexpr int64_t kXidSpace = int64_t{1} << 32;
}  // namespace

std::string to_json(const Watermark& w, const std::string& method) {
  nlohmann::json j = {{"format", 1},         {"xmin", w.xmin},     {"xmax", w.xmax},
                      {"source", w.source},   {"method", method},   {"lookup_rows", w.lookup_rows},
                      {"rows", w.rows},       {"rejects_run", w.rejects_run}};
  if (w.ties >= 0) j["ties"] = w.ties;
  if (w.writes >= 0) j["writes"] = w.writes;
  return j.dump();
}

std::optional<Watermark> from_json(const std::string& json) {
  if (json.empty()) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("format", 0) != 1 || !j.contains("xmin") || !j["xmin"].is_number_integer() ||
      !j.contains("xmax") || !j["xmax"].is_number_integer()) {
    return std::nullopt;
  }
  Watermark w{j["xmin"].get<int64_t>(), j["xmax"].get<int64_t>(), j.value("source", std::string()), {}, -1, {}, -1, -1};
  if (j.contains("rows") && j["rows"].is_number_integer()) w.rows = j["rows"].get<int64_t>();
  w.rejects_run = j.value("rejects_run", std::string());
  if (j.contains("ties") && j["ties"].is_number_integer()) w.ties = j["ties"].get<int64_t>();
  if (j.contains("writes") && j["writes"].is_number_integer()) w.writes = j["writes"].get<int64_t>();
  if (j.contains("lookup_rows") && j["lookup_rows"].is_object()) {
    for (const auto& [name, n] : j["lookup_rows"].items())
      if (n.is_number_integer()) w.lookup_rows[name] = n.get<int64_t>();
  }
  return w;
}

std::optional<std::string> changed_since(const Watermark& since, const Watermark& now, std::string& why,
                                         const std::string& alias) {
  if (since.source != now.source) {
    why = "the source is not the database the last run read (" + since.source + ", now " + now.source + ")";
    return std::nullopt;
  }
  if (since.xmin > now.xmax) {
    why = "the source's transaction counter is behind the last run's (restored or replaced source)";
    return std::nullopt;
  }
  if (now.xmax - since.xmin >= kXidSpace / 2) {
    why = "the last run's snapshot is more than 2^31 transactions old";
    return std::nullopt;
  }
  if (since.xmin == now.xmax) return "false";
  // Row versions carry 32-bit transaction ids: the 64-bit window
  // [since.xmin, now.xmax) maps onto one interval of them, or two when it
  // crosses an epoch boundary. Ids above now.xmax-1 are not visible anyway.
  int64_t lo = since.xmin % kXidSpace, hi = now.xmax % kXidSpace;
  if (now.age_base >= 0) {
    // x in [lo, hi) <=> age(x) = base - x in [base - hi + 1, base - lo], all
    // below 2^31 since base >= hi and hi - lo < 2^31 (checked above).
    int64_t from = (now.age_base - hi + 1 + kXidSpace) % kXidSpace;
    int64_t to = (now.age_base - lo + kXidSpace) % kXidSpace;
    if (from <= to && to < kXidSpace / 2) {
      return "pg_catalog.age(" + alias + ".xmin) BETWEEN " + std::to_string(from) + " AND " + std::to_string(to);
    }
  }
  std::string x = alias + ".xmin::text::bigint";
  if (lo < hi) return x + " >= " + std::to_string(lo) + " AND " + x + " < " + std::to_string(hi);
  return x + " >= " + std::to_string(lo) + " OR " + x + " < " + std::to_string(hi);
}

}  // namespace stagesync::delta
