// The signing-key cache: always the derived key, per (credential, date, region, service),
// under concurrency and past its size bound.
#include "xks/sigv4/signing_key.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace xks::sigv4 {
namespace {

TEST(SigningKeyCache, ReturnsTheDerivedKey) {
  SigningKeyCache cache;
  SigningKey expected = derive_signing_key("secret", "20261123", "us-east-1", "kms-xks-proxy");
  EXPECT_EQ(cache.get(0, "secret", "20261123", "us-east-1", "kms-xks-proxy"), expected);
  EXPECT_EQ(cache.get(0, "secret", "20261123", "us-east-1", "kms-xks-proxy"), expected);
}

TEST(SigningKeyCache, KeepsEveryInputApart) {
  SigningKeyCache cache;
  SigningKey base = cache.get(0, "secret", "20261123", "us-east-1", "kms-xks-proxy");
  EXPECT_NE(cache.get(1, "secret2", "20261123", "us-east-1", "kms-xks-proxy"), base);
  EXPECT_NE(cache.get(0, "secret", "20261124", "us-east-1", "kms-xks-proxy"), base);
  EXPECT_NE(cache.get(0, "secret", "20261123", "us-east-2", "kms-xks-proxy"), base);
  EXPECT_NE(cache.get(0, "secret", "20261123", "us-east-1", "kms"), base);
  // A region that ends like a field separator must not alias another tuple.
  EXPECT_EQ(cache.get(0, "secret", "2026112", "3:us-east-1", "kms-xks-proxy"),
            derive_signing_key("secret", "2026112", "3:us-east-1", "kms-xks-proxy"));
  EXPECT_EQ(cache.get(0, "secret", "20261123", "us-east-1", "kms-xks-proxy"), base);
}

TEST(SigningKeyCache, StaysCorrectPastItsBound) {
  SigningKeyCache cache;
  for (int i = 0; i < 600; ++i) {
    std::size_t credential = static_cast<std::size_t>(i % 300);
    std::string secret = "secret-" + std::to_string(credential);
    ASSERT_EQ(cache.get(credential, secret, "20261123", "eu-west-1", "kms-xks-proxy"),
              derive_signing_key(secret, "20261123", "eu-west-1", "kms-xks-proxy"));
  }
}

TEST(SigningKeyCache, IsSafeToShareBetweenThreads) {
  SigningKeyCache cache;
  std::vector<SigningKey> expected;
  for (int i = 0; i < 8; ++i) {
    expected.push_back(
        derive_signing_key("s" + std::to_string(i), "20261123", "us-east-1", "kms-xks-proxy"));
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2000; ++round) {
        int i = (round + t) % 8;
        if (cache.get(static_cast<std::size_t>(i), "s" + std::to_string(i), "20261123", "us-east-1",
                      "kms-xks-proxy") != expected[static_cast<std::size_t>(i)]) {
          ++mismatches[static_cast<std::size_t>(t)];
        }
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace xks::sigv4
