// AWS's published SigV4 worked examples: the signing-key derivation example, the IAM ListUsers
// example of the "Create a signed AWS API request" guide, and cases of AWS's SigV4 test suite
// (credential AKIDEXAMPLE, 2015-08-30T12:36:00Z, us-east-1, service "service"). Each case checks
// our canonical request and our Signer's signature against AWS's expected values.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "owned_request.h"
#include "xks/sigv4/canonical.h"
#include "xks/sigv4/signer.h"
#include "xks/sigv4/signing_key.h"

namespace xks::sigv4 {
namespace {

constexpr std::string_view kAccessKeyId = "AKIDEXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kAmzDate = "20150830T123600Z";

std::string hex(const SigningKey& key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (auto byte : key) {
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

TEST(AwsExamples, SigningKeyDerivation) {
  EXPECT_EQ(hex(derive_signing_key(kSecret, "20120215", "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
  EXPECT_EQ(hex(derive_signing_key(kSecret, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}

struct Example {
  std::string name;
  std::string service;
  std::string method;
  std::string path;
  std::string query;
  std::vector<std::pair<std::string, std::string>> headers;  // X-Amz-Date is added
  std::string body;
  std::string canonical_request;
  std::string string_to_sign_hash;  // empty: not published for this case
  std::string signature;
};

constexpr std::string_view kEmptyHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::vector<Example> examples() {
  const std::string empty(kEmptyHash);
  return {
      {"iam_list_users",
       "iam",
       "GET",
       "/",
       "Action=ListUsers&Version=2010-05-08",
       {{"Host", "iam.amazonaws.com"},
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
       "",
       "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
       "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
       "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
       "content-type;host;x-amz-date\n" +
           empty,
       "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
       "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"},
      {"get_vanilla",
       "service",
       "GET",
       "/",
       "",
       {{"Host", "example.amazonaws.com"}},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
           empty,
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get_header_key_duplicate",
       "service",
       "GET",
       "/",
       "",
       {{"Host", "example.amazonaws.com"},
        {"My-Header1", "value2"},
        {"My-Header1", "value2"},
        {"My-Header1", "value1"}},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
           empty,
       "",
       "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get_header_value_multiline",
       "service",
       "GET",
       "/",
       "",
       {{"Host", "example.amazonaws.com"}, {"My-Header1", "value1\r\n  value2\r\n     value3"}},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1 value2 value3\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
           empty,
       "",
       "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd"},
      {"get_header_value_order",
       "service",
       "GET",
       "/",
       "",
       {{"Host", "example.amazonaws.com"},
        {"My-Header1", "value4"},
        {"My-Header1", "value1"},
        {"My-Header1", "value3"},
        {"My-Header1", "value2"}},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" +
           empty,
       "",
       "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"get_header_value_trim",
       "service",
       "GET",
       "/",
       "",
       {{"Host", "example.amazonaws.com"},
        {"My-Header1", " value1"},
        {"My-Header2", " \"a   b   c\""}},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
       "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" +
           empty,
       "",
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"get_vanilla_query_order_key_case",
       "service",
       "GET",
       "/",
       "Param2=value2&Param1=value1",
       {{"Host", "example.amazonaws.com"}},
       "",
       "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
           empty,
       "",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"post_vanilla",
       "service",
       "POST",
       "/",
       "",
       {{"Host", "example.amazonaws.com"}},
       "",
       "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
           empty,
       "",
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post_header_key_sort",
       "service",
       "POST",
       "/",
       "",
       {{"Host", "example.amazonaws.com"}, {"My-Header1", "value1"}},
       "",
       "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\n"
       "host;my-header1;x-amz-date\n" +
           empty,
       "",
       "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {"post_header_value_case",
       "service",
       "POST",
       "/",
       "",
       {{"Host", "example.amazonaws.com"}, {"My-Header1", "VALUE1"}},
       "",
       "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\n"
       "host;my-header1;x-amz-date\n" +
           empty,
       "",
       "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      {"post_x_www_form_urlencoded",
       "service",
       "POST",
       "/",
       "",
       {{"Content-Type", "application/x-www-form-urlencoded"},
        {"Host", "example.amazonaws.com"},
        {"Content-Length", "13"},
        {"X-Amz-Content-Sha256",
         "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"}},
       "Param1=value1",
       "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\n"
       "host:example.amazonaws.com\n"
       "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
       "x-amz-date:20150830T123600Z\n\n"
       "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
       "",
       "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"},
  };
}

class AwsExampleTest : public testing::TestWithParam<Example> {};

TEST_P(AwsExampleTest, CanonicalRequestAndSignatureMatchAws) {
  const Example& example = GetParam();
  test::OwnedRequest request{example.method, example.path, example.query, example.headers,
                             example.body};
  request.headers.emplace_back("X-Amz-Date", kAmzDate);

  std::string signed_headers =
      example.canonical_request.substr(example.canonical_request.rfind("\n\n") + 2);
  signed_headers = signed_headers.substr(0, signed_headers.find('\n'));
  auto canonical = canonical_request(request.view(), signed_headers);
  ASSERT_TRUE(canonical.has_value());
  EXPECT_EQ(*canonical, example.canonical_request);

  std::string scope = credential_scope("20150830", "us-east-1", example.service);
  std::string to_sign = string_to_sign(kAmzDate, scope, *canonical);
  if (!example.string_to_sign_hash.empty()) {
    EXPECT_EQ(to_sign,
              "AWS4-HMAC-SHA256\n20150830T123600Z\n" + scope + "\n" + example.string_to_sign_hash);
  }

  Signer signer({std::string(kAccessKeyId), std::string(kSecret)}, "us-east-1", example.service);
  EXPECT_EQ(signer.authorization(request.view(), kAmzDate),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + scope +
                ", SignedHeaders=" + signed_headers + ", Signature=" + example.signature);
}

INSTANTIATE_TEST_SUITE_P(Published, AwsExampleTest, testing::ValuesIn(examples()),
                         [](const auto& test) { return test.param.name; });

}  // namespace
}  // namespace xks::sigv4
