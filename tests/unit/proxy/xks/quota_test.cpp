// Quotas: token buckets refill at their rate up to their burst; a key store's and a key's
// bucket both have to hold a token, and neither is spent when the other is empty.
#include "quota.h"

#include <gtest/gtest.h>

namespace xks::proxy {
namespace {

using namespace std::chrono_literals;
using Result = Quota::Result;

TEST(QuotaTest, ABucketGivesItsBurstThenItsRate) {
  auto start = Quota::Clock::time_point{} + 1h;
  QuotaConfig config;
  config.requests_per_second = 10;
  config.burst = 3;
  Quota quota(config, start);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(quota.admit("k", start), Result::kAdmitted);
  EXPECT_EQ(quota.admit("k", start), Result::kKeyStoreThrottled);
  EXPECT_EQ(quota.admit("k", start + 50ms), Result::kKeyStoreThrottled);  // half a token
  EXPECT_EQ(quota.admit("k", start + 100ms), Result::kAdmitted);
  // Never more than the burst, however long it rested.
  auto later = start + 1h;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(quota.admit("k", later), Result::kAdmitted);
  EXPECT_EQ(quota.admit("k", later), Result::kKeyStoreThrottled);
}

TEST(QuotaTest, EachKeyHasItsOwnBucketInsideTheKeyStores) {
  auto now = Quota::Clock::time_point{} + 1h;
  QuotaConfig config;
  config.requests_per_second = 1;
  config.burst = 3;
  config.key_requests_per_second = 1;
  config.key_burst = 2;
  Quota quota(config, now);
  EXPECT_EQ(quota.admit("a", now), Result::kAdmitted);
  EXPECT_EQ(quota.admit("a", now), Result::kAdmitted);
  EXPECT_EQ(quota.admit("a", now), Result::kKeyThrottled);
  EXPECT_EQ(quota.admit("b", now), Result::kAdmitted);
  // The key store's bucket is empty now; b's own token is not spent on a refusal.
  EXPECT_EQ(quota.admit("b", now), Result::kKeyStoreThrottled);
  // A second later each bucket has gained one token.
  EXPECT_EQ(quota.admit("b", now + 1s), Result::kAdmitted);
  EXPECT_EQ(quota.admit("b", now + 1s), Result::kKeyStoreThrottled);
}

TEST(QuotaTest, KeysBeyondTheCapShareOneBucket) {
  auto now = Quota::Clock::time_point{} + 1h;
  QuotaConfig config;
  config.key_requests_per_second = 1;
  config.key_burst = 1;
  Quota quota(config, now);
  for (std::size_t i = 0; i < Quota::kMaxKeyBuckets; ++i)
    ASSERT_EQ(quota.admit("key-" + std::to_string(i), now), Result::kAdmitted);
  EXPECT_EQ(quota.admit("one-more", now), Result::kAdmitted);
  EXPECT_EQ(quota.admit("and-another", now), Result::kKeyThrottled);
}

}  // namespace
}  // namespace xks::proxy
