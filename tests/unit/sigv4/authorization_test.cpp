// The Authorization header parser: accepted forms and every malformed variant.
#include "xks/sigv4/authorization.h"

#include <gtest/gtest.h>

#include <string>

namespace xks::sigv4 {
namespace {

const std::string kCredentialValue =
    "AKIAZ2345ABCDEFGHIJK/20261123/us-east-1/kms-xks-proxy/aws4_request";
const std::string kCredential = "Credential=" + kCredentialValue;
const std::string kSignedHeaders = "SignedHeaders=host;x-amz-date";
const std::string kSignature =
    "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kValid =
    "AWS4-HMAC-SHA256 " + kCredential + ", " + kSignedHeaders + ", " + kSignature;

TEST(ParseAuthorization, ExtractsEveryField) {
  auto parsed = parse_authorization(kValid);
  ASSERT_TRUE(parsed.has_value()) << failure_name(parsed.error());
  EXPECT_EQ(parsed->access_key_id, "AKIAZ2345ABCDEFGHIJK");
  EXPECT_EQ(parsed->date, "20261123");
  EXPECT_EQ(parsed->region, "us-east-1");
  EXPECT_EQ(parsed->service, "kms-xks-proxy");
  EXPECT_EQ(parsed->signed_headers, "host;x-amz-date");
  EXPECT_EQ(parsed->signature, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

class AcceptedForm : public testing::TestWithParam<std::string> {};

TEST_P(AcceptedForm, Parses) {
  auto parsed = parse_authorization(GetParam());
  ASSERT_TRUE(parsed.has_value()) << failure_name(parsed.error());
  EXPECT_EQ(parsed->access_key_id, "AKIAZ2345ABCDEFGHIJK");
  EXPECT_EQ(parsed->signed_headers, "host;x-amz-date");
}

INSTANTIATE_TEST_SUITE_P(
    Forms, AcceptedForm,
    testing::Values(kValid,
                    // no space after the commas (AWS's own examples use both)
                    "AWS4-HMAC-SHA256 " + kCredential + "," + kSignedHeaders + "," + kSignature,
                    // components in another order
                    "AWS4-HMAC-SHA256 " + kSignature + ", " + kCredential + ", " + kSignedHeaders,
                    // surrounding whitespace left by a lenient HTTP parser
                    "  " + kValid + " \t"));

struct Malformed {
  std::string name;
  std::string value;
  Failure failure;
};

class MalformedAuthorization : public testing::TestWithParam<Malformed> {};

TEST_P(MalformedAuthorization, IsRejectedWithItsReason) {
  auto parsed = parse_authorization(GetParam().value);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(failure_name(parsed.error()), failure_name(GetParam().failure));
}

std::string with_credential(const std::string& credential) {
  return "AWS4-HMAC-SHA256 Credential=" + credential + ", " + kSignedHeaders + ", " + kSignature;
}
std::string with_signed_headers(const std::string& list) {
  return "AWS4-HMAC-SHA256 " + kCredential + ", SignedHeaders=" + list + ", " + kSignature;
}
std::string with_signature(const std::string& signature) {
  return "AWS4-HMAC-SHA256 " + kCredential + ", " + kSignedHeaders + ", Signature=" + signature;
}

const std::string kHex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

INSTANTIATE_TEST_SUITE_P(
    Variants, MalformedAuthorization,
    testing::Values(
        Malformed{"empty", "", Failure::kUnsupportedAlgorithm},
        Malformed{"other_algorithm", "AWS4-HMAC-SHA512 " + kCredential,
                  Failure::kUnsupportedAlgorithm},
        Malformed{"lower_case_algorithm", "aws4-hmac-sha256 " + kCredential,
                  Failure::kUnsupportedAlgorithm},
        Malformed{"sigv2", "AWS AKIAZ2345ABCDEFGHIJK:c2lnbmF0dXJl", Failure::kUnsupportedAlgorithm},
        Malformed{"algorithm_only", "AWS4-HMAC-SHA256", Failure::kMalformedAuthorization},
        Malformed{"algorithm_and_space", "AWS4-HMAC-SHA256 ", Failure::kMalformedAuthorization},
        Malformed{"missing_credential", "AWS4-HMAC-SHA256 " + kSignedHeaders + ", " + kSignature,
                  Failure::kMalformedAuthorization},
        Malformed{"missing_signed_headers", "AWS4-HMAC-SHA256 " + kCredential + ", " + kSignature,
                  Failure::kMalformedAuthorization},
        Malformed{"missing_signature", "AWS4-HMAC-SHA256 " + kCredential + ", " + kSignedHeaders,
                  Failure::kMalformedAuthorization},
        Malformed{"duplicate_signature", kValid + ", " + kSignature,
                  Failure::kMalformedAuthorization},
        Malformed{"duplicate_credential", kValid + ", " + kCredential,
                  Failure::kMalformedAuthorization},
        Malformed{"unknown_component", kValid + ", Foo=bar", Failure::kMalformedAuthorization},
        Malformed{"lower_case_component",
                  "AWS4-HMAC-SHA256 credential=" + kCredentialValue + ", " + kSignedHeaders + ", " +
                      kSignature,
                  Failure::kMalformedAuthorization},
        Malformed{"trailing_comma", kValid + ",", Failure::kMalformedAuthorization},
        Malformed{"empty_component",
                  "AWS4-HMAC-SHA256 " + kCredential + ",, " + kSignedHeaders + ", " + kSignature,
                  Failure::kMalformedAuthorization},
        Malformed{"space_before_equals",
                  "AWS4-HMAC-SHA256 Credential =" + kCredentialValue + ", " + kSignedHeaders +
                      ", " + kSignature,
                  Failure::kMalformedAuthorization},
        Malformed{"components_without_commas",
                  "AWS4-HMAC-SHA256 " + kCredential + " " + kSignedHeaders + " " + kSignature,
                  Failure::kMalformedAuthorization},
        Malformed{"credential_four_parts",
                  with_credential("AKIAZ2345ABCDEFGHIJK/20261123/us-east-1/kms-xks-proxy"),
                  Failure::kMalformedCredential},
        Malformed{
            "credential_six_parts",
            with_credential("AKIAZ2345ABCDEFGHIJK/20261123/us-east-1/kms-xks-proxy/aws4_request/x"),
            Failure::kMalformedCredential},
        Malformed{
            "credential_bad_terminator",
            with_credential("AKIAZ2345ABCDEFGHIJK/20261123/us-east-1/kms-xks-proxy/aws4_requests"),
            Failure::kMalformedCredential},
        Malformed{"credential_empty_access_key_id",
                  with_credential("/20261123/us-east-1/kms-xks-proxy/aws4_request"),
                  Failure::kMalformedCredential},
        Malformed{"credential_access_key_id_punctuation",
                  with_credential("AKIA+2345/20261123/us-east-1/kms-xks-proxy/aws4_request"),
                  Failure::kMalformedCredential},
        Malformed{"credential_access_key_id_too_long",
                  with_credential(std::string(129, 'A') +
                                  "/20261123/us-east-1/kms-xks-proxy/aws4_request"),
                  Failure::kMalformedCredential},
        Malformed{
            "credential_short_date",
            with_credential("AKIAZ2345ABCDEFGHIJK/2026112/us-east-1/kms-xks-proxy/aws4_request"),
            Failure::kMalformedCredential},
        Malformed{
            "credential_impossible_date",
            with_credential("AKIAZ2345ABCDEFGHIJK/20261131/us-east-1/kms-xks-proxy/aws4_request"),
            Failure::kMalformedCredential},
        Malformed{
            "credential_month_13",
            with_credential("AKIAZ2345ABCDEFGHIJK/20261301/us-east-1/kms-xks-proxy/aws4_request"),
            Failure::kMalformedCredential},
        Malformed{
            "credential_upper_case_region",
            with_credential("AKIAZ2345ABCDEFGHIJK/20261123/US-EAST-1/kms-xks-proxy/aws4_request"),
            Failure::kMalformedCredential},
        Malformed{"credential_empty_region",
                  with_credential("AKIAZ2345ABCDEFGHIJK/20261123//kms-xks-proxy/aws4_request"),
                  Failure::kMalformedCredential},
        Malformed{"credential_empty_service",
                  with_credential("AKIAZ2345ABCDEFGHIJK/20261123/us-east-1//aws4_request"),
                  Failure::kMalformedCredential},
        Malformed{"signed_headers_empty", with_signed_headers(""),
                  Failure::kMalformedSignedHeaders},
        Malformed{"signed_headers_unsorted", with_signed_headers("x-amz-date;host"),
                  Failure::kMalformedSignedHeaders},
        Malformed{"signed_headers_duplicate", with_signed_headers("host;host;x-amz-date"),
                  Failure::kMalformedSignedHeaders},
        Malformed{"signed_headers_upper_case", with_signed_headers("Host;x-amz-date"),
                  Failure::kMalformedSignedHeaders},
        Malformed{"signed_headers_leading_semicolon", with_signed_headers(";host;x-amz-date"),
                  Failure::kMalformedSignedHeaders},
        Malformed{"signed_headers_trailing_semicolon", with_signed_headers("host;x-amz-date;"),
                  Failure::kMalformedSignedHeaders},
        Malformed{"signed_headers_space", with_signed_headers("host; x-amz-date"),
                  Failure::kMalformedSignedHeaders},
        Malformed{"signed_headers_colon", with_signed_headers("host:x;x-amz-date"),
                  Failure::kMalformedSignedHeaders},
        Malformed{
            "signature_upper_case_hex",
            with_signature("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"),
            Failure::kMalformedSignature},
        Malformed{"signature_63_digits", with_signature(kHex64.substr(1)),
                  Failure::kMalformedSignature},
        Malformed{"signature_65_digits", with_signature(kHex64 + "0"),
                  Failure::kMalformedSignature},
        Malformed{"signature_not_hex", with_signature(std::string("g").append(kHex64, 1)),
                  Failure::kMalformedSignature},
        Malformed{"signature_empty", with_signature(""), Failure::kMalformedSignature}),
    [](const auto& test) { return test.param.name; });

}  // namespace
}  // namespace xks::sigv4
