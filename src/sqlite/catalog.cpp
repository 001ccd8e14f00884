#include "sqlite/catalog.h"

#include "sqlite/statement.h"

namespace stagesync::sqlite {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = lower(c);
  return out;
}

bool same_name(const std::string& a, const std::string& b) { return lowered(a) == lowered(b); }

const std::string* find_table(const std::vector<std::string>& existing, const std::string& wanted) {
  for (const auto& name : existing)
    if (same_name(name, wanted)) return &name;
  return nullptr;
}

}  // namespace

std::string affinity_of(const std::string& declared_type) {
  std::string t = lowered(declared_type);
  auto has = [&](const char* part) { return t.find(part) != std::string::npos; };
  if (has("int")) return "sqlite:integer";
  if (has("char") || has("clob") || has("text")) return "sqlite:text";
  if (has("blob") || t.empty()) return "sqlite:blob";
  if (has("real") || has("floa") || has("doub")) return "sqlite:real";
  return "sqlite:numeric";
}

catalog::Tables read_tables(Database& db, const std::vector<std::string>& names) {
  catalog::Tables out;
  std::vector<std::string> existing;
  Statement list(db, "SELECT name FROM main.sqlite_master WHERE type IN ('table', 'view')");
  while (list.step()) existing.push_back(list.text(0));

  // hidden: 0 an ordinary column, 1 a virtual table's hidden column (not readable as a row value: left out),
  // 2 and 3 a generated column.
  Statement columns(db,
                    "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, hidden "
                    "FROM pragma_table_xinfo(?1, 'main') ORDER BY cid");
  for (const auto& wanted : names) {
    const std::string* name = find_table(existing, wanted);
    if (!name && lowered(wanted).rfind("main.", 0) == 0) name = find_table(existing, wanted.substr(5));
    if (!name) {
      out[wanted] = std::nullopt;
      continue;
    }
    catalog::TableSchema t;
    t.schema = "main";
    t.name = *name;
    columns.reset();
    columns.bind_text(1, *name);
    while (columns.step()) {
      int64_t hidden = columns.int64(4);
      if (hidden == 1) continue;
      catalog::Column c;
      c.name = columns.text(0);
      c.type = columns.text(1);
      c.base_type = affinity_of(c.type);
      c.not_null = columns.int64(2) != 0;
      c.generated = hidden == 2 || hidden == 3;
      c.has_default = columns.int64(3) != 0 || c.generated;
      c.max_length = -1;
      c.builtin_type = true;
      c.comparable = true;
      c.category = 'U';
      t.columns.push_back(std::move(c));
    }
    out[wanted] = std::move(t);
  }
  return out;
}

}  // namespace stagesync::sqlite
