#include "source/postgres/buckets.h"

#include "pg/sql.h"

namespace stagesync::source::postgres {

std::string Buckets::in(const std::vector<int>& buckets, const std::string& h) const {
  std::string bits(static_cast<size_t>(count_ + 7) / 8, '\0');
  for (int b : buckets)
    bits[static_cast<size_t>(b) / 8] = static_cast<char>(bits[static_cast<size_t>(b) / 8] | (1 << (b % 8)));
  static const char* hex = "0123456789abcdef";
  std::string literal = "\\x";
  for (unsigned char c : bits) {
    literal += hex[c >> 4];
    literal += hex[c & 15];
  }
  return "pg_catalog.get_bit(" + pg::text_literal(literal) + "::bytea, " + bucket(h) + ") = 1";
}

std::string Buckets::buckets(const std::string& h, const std::string& from, const std::string& aside) const {
  return "SELECT b, count(*), sum((h >> 32)::int4), sum((h & 2147483647)::int4) FROM (SELECT CASE WHEN y.w THEN -1 "
         "ELSE " +
         bucket("y.h") + " END AS b, y.h FROM (SELECT " + h + " AS h, " + aside + " AS w " + from + ") y) z GROUP BY b";
}

int bucket_count(int64_t rows) {
  int b = 64;
  while (b < 65536 && int64_t{b} * 32 < rows) b *= 2;
  return b;
}

BucketDigests read_buckets(pg::Result r, BucketDigests d) {
  for (int i = 0; i < r.rows(); ++i) {
    d[static_cast<int>(r.int64(i, 0))] += BucketDigest{r.int64(i, 1), r.int64(i, 2), r.int64(i, 3)};
  }
  return d;
}

std::vector<int> differing_buckets(const BucketDigests& ours, const BucketDigests& theirs) {
  std::vector<int> out;
  for (const auto& [b, d] : theirs) {
    auto it = ours.find(b);
    if (it == ours.end() || !(it->second == d)) out.push_back(b);
  }
  for (const auto& [b, d] : ours)
    if (!theirs.count(b)) out.push_back(b);
  return out;
}

}  // namespace stagesync::source::postgres
