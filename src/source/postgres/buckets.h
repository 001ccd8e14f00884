// Rows spread over buckets by their 64-bit hashes, and the SQL that digests
// and selects them: the cursor method's key digests (reconcile.h) and the
// stored image of a lookup (lookup_image.h) compare two servers' (or a
// server's and a stored) row sets bucket by bucket with it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "source/postgres/reconcile.h"

namespace stagesync::source::postgres {

class Buckets {
 public:
  // `count`: a power of two (bucket_count()).
  explicit Buckets(int count) : count_(count), mask_(std::to_string(count - 1)) {}
  // The bucket of hash h: bits 40 and up.
  std::string bucket(const std::string& h) const { return "((" + h + " >> 40) & " + mask_ + ")::int"; }
  // "The row with hash h is in one of `buckets`": one bit per bucket in a
  // bytea literal, so the test costs the same for one bucket or thousands.
  std::string in(const std::vector<int>& buckets, const std::string& h) const;
  // Per-bucket digests (bucket, rows, sums) of the hashes `h` of the rows of
  // `from`; rows where `aside` holds are counted in bucket -1 (digested, never compared).
  std::string buckets(const std::string& h, const std::string& from, const std::string& aside = "false") const;

 private:
  int count_;
  std::string mask_;
};

// About 32 rows per bucket, 64 to 65,536 buckets.
int bucket_count(int64_t rows);
// A digest query's answer, added to `d`.
BucketDigests read_buckets(pg::Result r, BucketDigests d = {});
// The buckets whose digests differ (a bucket one side lacks differs).
std::vector<int> differing_buckets(const BucketDigests& ours, const BucketDigests& theirs);

}  // namespace stagesync::source::postgres
