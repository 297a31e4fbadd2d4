// Routing request paths to key stores and XKS operations.
#include "xks/proxy/xks/router.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace xks::proxy {
namespace {

const std::vector<std::string> kPrefixes = {"", "/tenant-a", "/tenant-a/eu", "/b_2"};

TEST(Route, FindsEachOperation) {
  auto health = route("/tenant-a/kms/xks/v1/health", kPrefixes);
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->keystore, 1u);
  EXPECT_EQ(health->operation, wire::Operation::kGetHealthStatus);

  auto metadata = route("/kms/xks/v1/keys/foo/metadata", kPrefixes);
  ASSERT_TRUE(metadata.has_value());
  EXPECT_EQ(metadata->keystore, 0u);
  EXPECT_EQ(metadata->operation, wire::Operation::kGetKeyMetadata);
  EXPECT_EQ(metadata->key_id, "foo");

  auto encrypt = route("/b_2/kms/xks/v1/keys/Key.1_a-B/encrypt", kPrefixes);
  ASSERT_TRUE(encrypt.has_value());
  EXPECT_EQ(encrypt->keystore, 3u);
  EXPECT_EQ(encrypt->operation, wire::Operation::kEncrypt);
  EXPECT_EQ(encrypt->key_id, "Key.1_a-B");

  auto decrypt = route("/tenant-a/eu/kms/xks/v1/keys/k/decrypt", kPrefixes);
  ASSERT_TRUE(decrypt.has_value());
  EXPECT_EQ(decrypt->keystore, 2u);  // the longest prefix wins
  EXPECT_EQ(decrypt->operation, wire::Operation::kDecrypt);
}

TEST(Route, AcceptsTheLongestKeyIdAndUri) {
  std::string key_id(128, 'k');
  std::string path = "/kms/xks/v1/keys/" + key_id + "/encrypt";  // key_id views into it
  auto found = route(path, kPrefixes);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->key_id, key_id);
  EXPECT_FALSE(route("/kms/xks/v1/keys/" + key_id + "k/encrypt", kPrefixes).has_value());
  std::string long_prefix = "/" + std::string(200, 'p');
  std::vector<std::string> prefixes = {long_prefix};
  EXPECT_FALSE(route(long_prefix + "/kms/xks/v1/keys/" + std::string(60, 'k') + "/encrypt",
                     prefixes)
                   .has_value());  // over 256 characters
}

TEST(Route, RejectsEverythingElse) {
  for (std::string_view bad : {"/",
                               "",
                               "/kms/xks/v1",
                               "/kms/xks/v1/",
                               "/kms/xks/v1/health/",
                               "/kms/xks/v2/health",
                               "/unknown/kms/xks/v1/health",
                               "/tenant-b/kms/xks/v1/health",
                               "/kms/xks/v1/keys/foo/sign",
                               "/kms/xks/v1/keys/foo",
                               "/kms/xks/v1/keys//encrypt",
                               "/kms/xks/v1/keys/foo/encrypt/",
                               "/kms/xks/v1/keys/a/b/encrypt",
                               "/kms/xks/v1/keys/fo%6f/encrypt",
                               "/kms/xks/v1/keys/f o/encrypt",
                               "/kms/xks/v1/keys/./encrypt",
                               "/kms/xks/v1/keys/../encrypt",
                               "/kms/xks/v1/health?x=1",
                               "/KMS/xks/v1/health",
                               "//kms/xks/v1/health",
                               "/tenant-a/kms/xks/v1/keys/foo/Encrypt"}) {
    EXPECT_FALSE(route(bad, kPrefixes).has_value()) << bad;
  }
}

}  // namespace
}  // namespace xks::proxy
