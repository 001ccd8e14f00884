#include "source/postgres/lookup_image.h"

#include "pg/sql.h"
#include "source/postgres/source_query.h"
#include "stage/staging_table.h"

namespace stagesync::source::postgres {

LookupImages::LookupImages(const plan::TablePlan& table, pg::Connection& source, pg::Connection& target, Run run)
    : table_(table), source_(source), target_(target), run_(std::move(run)) {
  for (const auto& [name, value] : run_.settings.values) settings_ += name + "=" + value + ";";
  for (size_t i = 0; i < table_.lookups.size(); ++i) {
    Lookup l;
    l.position = static_cast<int>(i);
    for (const auto& c : table_.columns)
      if (c.lookup == l.position) l.filled = &c;
    if (!l.filled) continue;
    auto rows = run_.lookup_rows.find(table_.lookups[i].from.qualified_name());
    l.buckets = Buckets(bucket_count(rows == run_.lookup_rows.end() ? 0 : rows->second));
    if (auto h = run_.headers.find(l.position); h != run_.headers.end()) l.header = h->second;
    l.usable = !run_.previous_run.empty() && l.header && l.header->first == signature(l) &&
               l.header->second == run_.previous_run;
    lookups_.push_back(l);
  }
}

std::string LookupImages::pairs(const Lookup& l) const {
  const plan::ResolvedLookup& r = table_.lookups[static_cast<size_t>(l.position)];
  std::vector<std::string> typed, names, texts;
  for (size_t m = 0; m < r.match.size(); ++m) {
    std::string name = "m" + std::to_string(m);
    typed.push_back("x." + pg::ident(r.match[m]) + "::" + table_.column(r.match[m])->stage_type + " AS " + name);
    names.push_back("y." + name);
    texts.push_back("y." + name + "::text");
  }
  // The hash covers the match values and the taken value: a changed taken
  // value changes it. Integers hash as numbers (one seed per column, combined
  // by XOR; a NULL taken value as 0), about twice as cheap per row as the
  // row's text, which everything else hashes as (printed by the source in
  // the staging types).
  std::string hash;
  auto integer = [](const plan::StagedColumn& c) {
    return c.target.type == "smallint" || c.target.type == "integer" || c.target.type == "bigint";
  };
  bool integers = integer(*l.filled);
  for (const auto& m : r.match) integers = integers && integer(*table_.column(m));
  if (integers) {
    std::vector<std::string> parts;
    for (size_t m = 0; m < names.size(); ++m)
      parts.push_back("pg_catalog.hashint8extended(" + names[m] + "::bigint, " + std::to_string(m + 1) + ")");
    parts.push_back("coalesce(pg_catalog.hashint8extended(y.v::bigint, " + std::to_string(names.size() + 1) + "), 0)");
    hash = "(" + pg::join(parts, " # ") + ")";
  } else {
    hash = "pg_catalog.hashtextextended(ROW(" + pg::join(names, ", ") + ", y.v)::text, 0)";
  }
  return "SELECT y.*, ARRAY[" + pg::join(texts, ", ") + "] AS mt, " + hash + " AS h FROM (SELECT " +
         pg::join(typed, ", ") + ", x." + pg::ident(r.take) + "::" + l.filled->stage_type + " AS v FROM (" +
         lookup_select(r) + ") x) y";
}

std::string LookupImages::signature(const Lookup& l) const {
  const plan::ResolvedLookup& r = table_.lookups[static_cast<size_t>(l.position)];
  std::string s = "1;from " + r.from.qualified_name() + ";match";
  for (const auto& m : r.match) s += " " + m + ":" + table_.column(m)->stage_type;
  const catalog::Column* take = r.from.find(r.take);
  s += ";take " + r.take + ":" + (take ? take->base_type : "?") + ";as " + l.filled->name + ":" + l.filled->stage_type +
       ";" + settings_;
  return s;
}

// Only the lookups whose image is usable are digested: without one, the
// whole lookup is compared and no digest is looked at (at scale 10 the
// source's digests of jobshead cost 0.22 s).
void LookupImages::defer_target() {
  for (Lookup& l : lookups_) {
    if (!l.usable) continue;
    // The header again, with the rows digested (the same round trip): the
    // image is used only if it is still the one the run began with.
    std::vector<pg::Param> which{table_.target_name, std::to_string(l.position)};
    target_.defer(state::image_header_sql(), which, [&l](pg::Result& r) {
      if (r.rows()) l.now = std::make_pair(r.text(0, 0), r.text(0, 1));
    });
    target_.defer(l.buckets.buckets("r.h", "FROM " + state::image_rows("r", "$1", "$2")), which,
                  [&l](pg::Result& r) { l.ours = read_buckets(std::move(r)); });
  }
}

void LookupImages::source() {
  bool any = false;
  for (const Lookup& l : lookups_) any = any || l.usable;
  if (!any) return;
  // A hash aggregate of every match value in memory (as the key digests).
  source_.defer("SET LOCAL work_mem = '64MB'");
  for (Lookup& l : lookups_)
    if (l.usable) l.theirs = read_buckets(source_.exec(l.buckets.buckets("z.h", "FROM (" + pairs(l) + ") z")));
  source_.defer("SET LOCAL work_mem TO DEFAULT");
}

std::vector<stage::CopyChain::Copy> LookupImages::copies() {
  std::vector<stage::CopyChain::Copy> out;
  std::vector<std::string> keys;
  for (const auto& k : table_.key) keys.push_back("c." + pg::ident(k) + "::" + table_.column(k)->stage_type);
  std::string target_table = table_.target.qualified_name();
  for (Lookup& l : lookups_) {
    const plan::ResolvedLookup& r = table_.lookups[static_cast<size_t>(l.position)];
    std::string sig = signature(l);
    bool usable = l.usable && l.now == l.header;
    std::vector<int> differ;
    std::string told = "; lookup " + l.filled->name + ": ";
    if (usable) {
      differ = differing_buckets(l.ours, l.theirs);
      *run_.reason += told + std::to_string(differ.size()) + " bucket(s) of its stored image differ";
      if (differ.empty()) {  // the lookup gives what it gave: nothing to read again
        for (auto& s : state::update_image(table_.target_name, l.position, run_.run_id, "", ""))
          run_.record->push_back(std::move(s));
        continue;
      }
    }
    if (!usable) {
      *run_.reason += told + "no stored image of the last run's (" +
                      (!l.header                ? "none yet"
                       : l.header->first != sig ? "of another configuration"
                       : l.usable               ? "changed since the run began"
                                                : "of another run") +
                      "): the whole lookup is compared";
    }
    std::vector<std::string> ddl, columns, matched, typed, cast_back, on;
    for (size_t m = 0; m < r.match.size(); ++m) {
      std::string name = "m" + std::to_string(m), type = table_.column(r.match[m])->stage_type;
      ddl.push_back(name + " " + type);
      columns.push_back(name);
      matched.push_back("CAST(c." + pg::ident(r.match[m]) + " AS " + type + ")");
      typed.push_back("p." + name);
      cast_back.push_back("CAST(r.m[" + std::to_string(m + 1) + "] AS " + type + ")");
      on.push_back("p." + name + " = c." + pg::ident(r.match[m]));
    }
    std::string pairs_table = stage::create_work_table(
        target_, stage::work_table_name(run_.run_id, run_.index, "_l" + std::to_string(l.position)),
        pg::join(ddl, ", ") + ", mt text[], v " + l.filled->stage_type + ", h bigint");
    run_.created->push_back(pairs_table);
    std::string list = pg::join(columns, ", ") + ", mt, v, h";
    std::string select = "SELECT " + pg::join(columns, ", ") + ", mt, v, h FROM (" + pairs(l) + ") z";
    if (usable) select += " WHERE " + l.buckets.in(differ, "z.h");
    out.push_back(stage::CopyChain::Copy{copy_from(source_, select),
                                         "COPY " + pairs_table + " (" + list + ") FROM STDIN (FORMAT binary)",
                                         {"ANALYZE " + pairs_table},
                                         nullptr});
    std::string image = state::image_rows("r", target_.literal(table_.target_name), std::to_string(l.position));
    if (usable) {
      // The match values whose pair differs: new or changed at the source
      // (their pair is not in the image), or changed or gone (the image's
      // pair is not among the source's). Their rows are read again.
      std::string in_differing = l.buckets.in(differ, "r.h");
      fetch_.push_back("SELECT " + pg::join(keys, ", ") + " FROM " + target_table + " c WHERE (" +
                       pg::join(matched, ", ") + ") IN (SELECT " + pg::join(typed, ", ") + " FROM " + pairs_table +
                       " p WHERE NOT EXISTS (SELECT 1 FROM " + image + " AND r.h = p.h) UNION ALL SELECT " +
                       pg::join(cast_back, ", ") + " FROM " + image + " AND " + in_differing +
                       " AND NOT EXISTS (SELECT 1 FROM " + pairs_table + " p WHERE p.h = r.h))");
      for (auto& s : state::update_image(table_.target_name, l.position, run_.run_id, pairs_table, in_differing))
        run_.record->push_back(std::move(s));
    } else {
      // Every target row whose stored value is not the lookup's now.
      fetch_.push_back("SELECT " + pg::join(keys, ", ") + " FROM " + target_table + " c LEFT JOIN " + pairs_table +
                       " p ON " + pg::join(on, " AND ") + " WHERE c." + pg::ident(l.filled->name) +
                       "::" + l.filled->stage_type + " IS DISTINCT FROM p.v");
      for (auto& s : state::replace_image(table_.target_name, l.position, sig, run_.run_id, pairs_table))
        run_.record->push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace stagesync::source::postgres
