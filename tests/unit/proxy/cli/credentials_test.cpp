// Generated SigV4 credentials meet the format KMS accepts and never repeat.
#include "xks/proxy/cli/credentials.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "xks/proxy/config/config.h"
#include "xks/wire/base64.h"

namespace xks::proxy {
namespace {

TEST(GenerateCredential, MeetsKmsFormatsWithFullEntropy) {
  std::set<std::string> ids, secrets;
  for (int i = 0; i < 200; ++i) {
    sigv4::Credential credential = generate_credential();
    EXPECT_TRUE(is_valid_access_key_id(credential.access_key_id)) << credential.access_key_id;
    EXPECT_TRUE(is_valid_secret(credential.secret_access_key));
    EXPECT_EQ(wire::base64_decode(credential.secret_access_key)->size(), 32u);  // 256 bits
    ids.insert(credential.access_key_id);
    secrets.insert(credential.secret_access_key);
  }
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_EQ(secrets.size(), 200u);
}

TEST(KmsConsoleJson, HasTheFieldsTheConsoleImports) {
  sigv4::Credential credential{"AKIAXKSEXAMPLE234567",
                               "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="};
  auto file = boost::json::parse(kms_console_json("/t/kms/xks/v1", credential)).as_object();
  EXPECT_EQ(file.at("XksProxyUriPath").as_string(), "/t/kms/xks/v1");
  const auto& auth = file.at("XksProxyAuthenticationCredential").as_object();
  EXPECT_EQ(auth.at("AccessKeyId").as_string(), credential.access_key_id);
  EXPECT_EQ(auth.at("RawSecretAccessKey").as_string(), credential.secret_access_key);
}

}  // namespace
}  // namespace xks::proxy
