// Log-linear histogram buckets.
#include "latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace xks::load {

// Values below 2^bits have their own bucket each; above, the top `bits` bits of the value
// choose one of the 2^(bits-1) sub-buckets of its power of two.
LatencyHistogram::LatencyHistogram(int significant_bits)
    : bits_(significant_bits),
      sub_buckets_(std::uint64_t{1} << significant_bits),
      counts_(static_cast<std::size_t>(64 - significant_bits + 2) * (sub_buckets_ / 2)) {}

std::size_t LatencyHistogram::index_of(std::uint64_t value) const {
  if (value < sub_buckets_)
    return static_cast<std::size_t>(value);
  auto exponent = static_cast<std::uint64_t>(std::bit_width(value)) -
                  static_cast<std::uint64_t>(bits_);  // >= 1
  std::uint64_t sub_bucket = (value >> exponent) - sub_buckets_ / 2;
  return static_cast<std::size_t>(exponent * (sub_buckets_ / 2) + sub_buckets_ / 2 + sub_bucket);
}

std::uint64_t LatencyHistogram::upper_bound_of(std::size_t index) const {
  if (index < sub_buckets_)
    return index;
  std::uint64_t half = sub_buckets_ / 2;
  std::uint64_t exponent = (index - half) / half;
  std::uint64_t sub_bucket = (index - half) % half + half;
  return ((sub_bucket + 1) << exponent) - 1;
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
