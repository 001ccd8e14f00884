#include "report/reporter.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

namespace stagesync::report {
namespace {

std::string duration(double s) {
  if (s < 0) return "?";
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return buf;
}

double rate(const Progress& p) { return p.seconds > 0 ? p.rows / p.seconds : 0; }

std::string progress_text(const Progress& p) {
  std::string s = p.table + ": " + thousands(p.rows);
  if (p.estimate > 0 && !p.done) s += " of ~" + thousands(p.estimate);
  s += " rows, " + thousands(static_cast<int64_t>(rate(p))) + " rows/s";
  if (p.done) {
    s += ", staged in " + duration(p.seconds);
  } else if (p.estimate > p.rows && rate(p) > 0) {
    s += ", ETA " + duration((p.estimate - p.rows) / rate(p));
  }
  return s;
}

std::string counts_text(const TableResult& t) {
  const auto& c = t.counts;
  std::string verb = t.planned ? "would " : "";
  std::string s = t.target + ": read " + thousands(c.read) + ", " + verb + "insert" + (t.planned ? " " : "ed ") +
                  thousands(c.inserted) + ", " + verb + "update" + (t.planned ? " " : "d ") + thousands(c.updated) +
                  ", " + verb + "delete" + (t.planned ? " " : "d ") + thousands(c.deleted);
  if (c.rejected) s += ", rejected " + thousands(c.rejected);
  if (c.collisions) s += " (" + thousands(c.collisions) + " key collisions)";
  if (c.orphans_kept) s += ", orphans kept " + thousands(c.orphans_kept);
  if (c.duplicates_dropped) s += ", older duplicates dropped " + thousands(c.duplicates_dropped);
  if (c.preserved) s += ", foreign rows preserved " + thousands(c.preserved);
  return s;
}

std::string verify_text(const TableResult& t) {
  return t.target + ": " + (t.matches ? "OK" : "DIFFERENT") + "  source " + thousands(t.source_rows) + " rows [" +
         t.source_checksum + "]  target " + thousands(t.target_rows) + " rows [" + t.target_checksum + "]";
}

std::string summary_line(const RunSummary& s) {
  std::string line = s.command + " " + s.outcome;
  if (!s.run_id.empty()) line += " (run " + s.run_id + ")";
  line += " in " + duration(s.seconds);
  if (!s.error.empty()) line += ": " + s.error;
  return line;
}

class PlainReporter : public Reporter {
 public:
  void info(const std::string& m) override { std::cerr << m << "\n"; }
  void warning(const std::string& m) override { std::cerr << "warning: " << m << "\n"; }
  void progress(const Progress& p) override {
    // Plain output logs a table once when done, and otherwise at most every 10 s.
    auto now = std::chrono::steady_clock::now();
    if (p.table != table_) {
      table_ = p.table;
      last_ = now;
    }
    if (p.done || now - last_ > std::chrono::seconds(10)) {
      std::cerr << "staging " << progress_text(p) << "\n";
      last_ = now;
    }
  }
  void table_done(const TableResult& t) override {
    std::cerr << (t.verified ? verify_text(t) : counts_text(t)) << "\n";
  }
  void finished(const RunSummary& s) override { std::cout << summary_line(s) << std::endl; }

 private:
  std::string table_;
  std::chrono::steady_clock::time_point last_{};
};

class TerminalReporter : public PlainReporter {
 public:
  void info(const std::string& m) override { clear(); PlainReporter::info(m); }
  void warning(const std::string& m) override { clear(); PlainReporter::warning(m); }
  void progress(const Progress& p) override {
    std::string text = "  staging " + progress_text(p);
    if (text.size() < width_) text.append(width_ - text.size(), ' ');
    width_ = text.size();
    std::cerr << "\r" << text << (p.done ? "\n" : "") << std::flush;
    if (p.done) width_ = 0;
  }
  void table_done(const TableResult& t) override { clear(); PlainReporter::table_done(t); }

 private:
  void clear() {
    if (width_) std::cerr << "\r" << std::string(width_, ' ') << "\r";
    width_ = 0;
  }
  size_t width_ = 0;
};

// Text that may be unknown or not apply: null when empty (docs/json.md).
nlohmann::json text_or_null(const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); }

nlohmann::json counts_json(const apply::TableCounts& c) {
  return {{"read", c.read},         {"inserted", c.inserted},
          {"updated", c.updated},   {"deleted", c.deleted},
          {"rejected", c.rejected}, {"collisions", c.collisions},
          {"orphans_kept", c.orphans_kept}, {"duplicates_dropped", c.duplicates_dropped},
          {"foreign_rows_preserved", c.preserved}, {"seconds", c.seconds}};
}

nlohmann::json table_json(const TableResult& t) {
  nlohmann::json j = {{"source", t.source}, {"target", t.target}};
  if (t.verified) {
    j["matches"] = t.matches;
    j["source_rows"] = t.source_rows;
    j["target_rows"] = t.target_rows;
    j["source_checksum"] = t.source_checksum;
    j["target_checksum"] = t.target_checksum;
  } else {
    j["mode_requested"] = text_or_null(t.mode_requested);
    j["mode_used"] = text_or_null(t.mode_used);
    j["reason"] = text_or_null(t.reason);
    j["counts"] = counts_json(t.counts);
    j["planned"] = t.planned;
    j["guard"] = {{"owned_rows_before", t.owned_before},
                  {"owned_rows_counted", t.owned_before_exact},
                  {"would_delete", t.would_delete},
                  {"tripped", t.guard_tripped.empty() ? nlohmann::json() : nlohmann::json(t.guard_tripped)},
                  {"overridden", t.guard_overridden}};
  }
  return j;
}

class JsonReporter : public Reporter {
 public:
  void info(const std::string& m) override { emit({{"event", "info"}, {"message", m}}); }
  void warning(const std::string& m) override { emit({{"event", "warning"}, {"message", m}}); }
  void progress(const Progress& p) override {
    auto now = std::chrono::steady_clock::now();
    if (!p.done && now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    emit({{"event", p.done ? "staged" : "progress"}, {"table", p.table}, {"rows", p.rows},
          {"estimate", p.estimate < 0 ? nlohmann::json() : nlohmann::json(p.estimate)}, {"seconds", p.seconds}});
  }
  void table_done(const TableResult& t) override {
    nlohmann::json j = table_json(t);
    j["event"] = t.verified ? "verified" : t.planned ? "planned" : "applied";
    emit(j);
  }
  void finished(const RunSummary& s) override {
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& t : s.tables) tables.push_back(table_json(t));
    emit({{"event", "summary"},
          {"command", s.command},
          {"run_id", text_or_null(s.run_id)},
          {"mode", text_or_null(s.mode)},
          {"strategy", text_or_null(s.strategy)},
          {"outcome", s.outcome},
          {"exit_code", s.exit_code},
          {"seconds", s.seconds},
          {"error", text_or_null(s.error)},
          {"problems", s.problems},
          {"backup_id", text_or_null(s.backup_id)},
          {"tables", tables},
          {"follow", s.follow}});
  }

 private:
  void emit(const nlohmann::json& j) {
    std::cout << j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) << std::endl;
  }
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

std::string thousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::unique_ptr<Reporter> make_reporter(Format format) {
  if (format == Format::Auto) format = isatty(STDERR_FILENO) ? Format::Terminal : Format::Plain;
  switch (format) {
    case Format::Json: return std::make_unique<JsonReporter>();
    case Format::Terminal: return std::make_unique<TerminalReporter>();
    default: return std::make_unique<PlainReporter>();
  }
}

}  // namespace stagesync::report
