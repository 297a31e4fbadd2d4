// A log-linear latency histogram (in the manner of HdrHistogram): each power of two of
// nanoseconds is split into 128 linear sub-buckets, so any recorded value is known to within
// 1/128 (< 1 %). Fixed memory, O(1) record, mergeable across worker threads.
#pragma once

#include <array>
#include <cstdint>

namespace xks::load {

class LatencyHistogram {
 public:
  void record(std::uint64_t nanoseconds);
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t max() const { return max_; }
  // The value at quantile q (0..1): an upper bound within 1 % of the true value.
  std::uint64_t quantile(double q) const;

 private:
  // Values >= 256 keep 8 significant bits: 128 sub-buckets per power of two, < 0.8 % error.
  static constexpr int kSubBucketBits = 8;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  static constexpr int kExponents = 64 - kSubBucketBits + 1;

  static std::size_t index_of(std::uint64_t value);
  static std::uint64_t upper_bound_of(std::size_t index);

  std::array<std::uint64_t, static_cast<std::size_t>(kExponents) * kSubBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace xks::load
