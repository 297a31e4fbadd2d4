// The load generator's histogram: every quantile within 1 % of the exact value, exact counts
// and maximum, and merging equal to recording everything in one.
#include "latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace xks::load {
namespace {

TEST(LatencyHistogram, QuantilesAreWithinOnePercent) {
  std::mt19937_64 rng(std::random_device{}());
  std::lognormal_distribution<double> latency(13, 1.5);  // ~0.4 ms median, a long tail
  LatencyHistogram histogram;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    auto value = static_cast<std::uint64_t>(latency(rng));
    values.push_back(value);
    histogram.record(value);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.9, 0.99, 0.999, 0.9999}) {
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    double exact = static_cast<double>(values[rank - 1]);
    double reported = static_cast<double>(histogram.quantile(q));
    EXPECT_LE(std::abs(reported - exact) / exact, 0.01) << "q=" << q;
  }
  EXPECT_EQ(histogram.count(), values.size());
  EXPECT_EQ(histogram.max(), values.back());
  EXPECT_EQ(histogram.quantile(1.0), values.back());
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (std::uint64_t v = 0; v < 256; ++v)
    histogram.record(v);
  EXPECT_EQ(histogram.quantile(0.5), 127u);
  EXPECT_EQ(histogram.quantile(1.0), 255u);
  EXPECT_EQ(LatencyHistogram().quantile(0.5), 0u);
}

TEST(LatencyHistogram, MergingEqualsRecordingInOne) {
  LatencyHistogram a, b, all;
  for (std::uint64_t v = 1; v < 100000; v += 7) {
    (v % 2 != 0 ? a : b).record(v * 1000);
    all.record(v * 1000);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  for (double q : {0.1, 0.5, 0.99})
    EXPECT_EQ(a.quantile(q), all.quantile(q));
}

TEST(LatencyHistogram, CoarsePrecisionStaysWithinItsBound) {
  LatencyHistogram coarse(5);
  std::vector<std::uint64_t> values;
  for (std::uint64_t v = 1; v < 5'000'000'000; v = v * 3 / 2 + 1) {
    values.push_back(v);
    coarse.record(v);
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    double q = static_cast<double>(i + 1) / static_cast<double>(values.size());
    double exact = static_cast<double>(values[i]);
    EXPECT_LE(std::abs(static_cast<double>(coarse.quantile(q)) - exact) / exact, 0.0625)
        << values[i];
  }
}

TEST(LatencyHistogram, TheLargestValuesFit) {
  LatencyHistogram histogram;
  histogram.record(UINT64_MAX);
  histogram.record(0);
  EXPECT_EQ(histogram.quantile(1.0), UINT64_MAX);
  EXPECT_EQ(histogram.count(), 2u);
}

}  // namespace
}  // namespace xks::load
