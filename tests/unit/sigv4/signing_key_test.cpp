// The signing-key cache: always the derived key, per (credential, date, region, service),
// under concurrency and past its size bound.
#include "xks/sigv4/signing_key.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <thread>
#include <vector>

namespace xks::sigv4 {
namespace {

// OpenSSL's one-shot HMAC as the independent reference.
std::string reference_signature(const SigningKey& key, std::string_view data) {
  unsigned char mac[32];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &size);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kDigits[mac[i] >> 4]);
    hex.push_back(kDigits[mac[i] & 0x0f]);
  }
  return hex;
}

// The signature's MAC context keeps its last key: a repeat, a change and a change back must
// each give the MAC of the key they were given.
TEST(SignatureHex, FollowsEveryChangeOfKey) {
  SigningKey first = derive_signing_key("secret", "20261123", "us-east-1", "kms-xks-proxy");
  SigningKey second = derive_signing_key("secret", "20261124", "us-east-1", "kms-xks-proxy");
  SigningKey one_bit_off = first;
  one_bit_off[31] ^= 1;
  for (const SigningKey* key : {&first, &first, &second, &first, &one_bit_off, &second, &second}) {
    EXPECT_EQ(signature_hex(*key, "string to sign"), reference_signature(*key, "string to sign"));
    EXPECT_EQ(signature_hex(*key, ""), reference_signature(*key, ""));
  }
}

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
