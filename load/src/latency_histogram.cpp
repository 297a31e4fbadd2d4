// Log-linear histogram buckets.
#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace xks::load {

// Values below 256 have their own bucket each (exponent 0); above, the top 8 bits of the
// value choose one of the 128 sub-buckets of its power of two.
std::size_t LatencyHistogram::index_of(std::uint64_t value) {
  if (value < kSubBuckets)
    return static_cast<std::size_t>(value);
  int exponent = static_cast<int>(std::bit_width(value)) - kSubBucketBits;  // >= 1
  auto sub_bucket = static_cast<std::size_t>(value >> exponent) - kSubBuckets / 2;
  return static_cast<std::size_t>(exponent) * kSubBuckets / 2 + kSubBuckets / 2 + sub_bucket;
}

std::uint64_t LatencyHistogram::upper_bound_of(std::size_t index) {
  if (index < kSubBuckets)
    return index;
  std::size_t exponent = (index - kSubBuckets / 2) / (kSubBuckets / 2);
  std::size_t sub_bucket = (index - kSubBuckets / 2) % (kSubBuckets / 2) + kSubBuckets / 2;
  return ((static_cast<std::uint64_t>(sub_bucket) + 1) << exponent) - 1;
}

void LatencyHistogram::record(std::uint64_t nanoseconds) {
  ++counts_[index_of(nanoseconds)];
  ++count_;
  max_ = std::max(max_, nanoseconds);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < counts_.size(); ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::quantile(double q) const {
  if (count_ == 0)
    return 0;
  auto rank =
      static_cast<std::uint64_t>(std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count_)));
  rank = std::max<std::uint64_t>(rank, 1);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank)
      return std::min(upper_bound_of(i), max_);
  }
  return max_;
}

}  // namespace xks::load
