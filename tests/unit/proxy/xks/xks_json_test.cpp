// XKS request validation and response bodies, including the spec's CDIV worked example.
#include "xks_json.h"

#include <gtest/gtest.h>

#include "xks/wire/base64.h"

namespace xks::proxy {
namespace {

const std::string kKeyedMetadata =
    R"("requestMetadata":{"awsPrincipalArn":"arn:aws:iam::123456789012:user/Alice",)"
    R"("kmsKeyArn":"arn:aws:kms:us-east-2:123456789012:/key/1","kmsOperation":"Encrypt",)"
    R"("kmsRequestId":"4112f4d6-db54-4af4-ae30-c55a22a8dfae","kmsViaService":"ebs"})";

std::string body(const std::string& fields) {
  return "{" + kKeyedMetadata + fields + "}";
}

void expect_rejected(wire::Operation operation, const std::string& text, XksError error) {
  auto parsed = parse_request(operation, text);
  ASSERT_FALSE(parsed.has_value()) << text;
  EXPECT_EQ(error_name(parsed.error().error), error_name(error))
      << text << " -> " << parsed.error().message;
}

TEST(ParseRequest, TheSpecsEncryptExample) {
  auto parsed = parse_request(
      wire::Operation::kEncrypt,
      body(R"(,"additionalAuthenticatedData":"cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",)"
           R"("plaintext":"SGVsbG8gV29ybGQh","encryptionAlgorithm":"AES_GCM",)"
           R"("ciphertextDataIntegrityValueAlgorithm":"SHA_256")"));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->metadata.kms_request_id, "4112f4d6-db54-4af4-ae30-c55a22a8dfae");
  EXPECT_EQ(parsed->metadata.kms_via_service, "ebs");
  const EncryptRequest& encrypt = *parsed->encrypt;
  EXPECT_EQ(std::string(encrypt.plaintext.begin(), encrypt.plaintext.end()), "Hello World!");
  EXPECT_EQ(std::string(encrypt.aad->begin(), encrypt.aad->end()),
            "project=nile,department=marketing");
  EXPECT_TRUE(encrypt.cdiv);
}

TEST(ParseRequest, TheSpecsDecryptExample) {
  auto parsed = parse_request(
      wire::Operation::kDecrypt,
      body(
          R"(,"additionalAuthenticatedData":"cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n",)"
          R"("encryptionAlgorithm":"AES_GCM","ciphertext":"ghxkK1txeDNn3q8Y",)"
          R"("ciphertextMetadata":"a2V5X3ZlcnNpb249MQ==","initializationVector":"HMrlRw85cAJUd5Ax",)"
          R"("authenticationTag":"vBxN2ncH1oEkR8WVXpmyYQ==")"));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  const DecryptRequest& decrypt = *parsed->decrypt;
  EXPECT_EQ(decrypt.ciphertext.size(), 12u);
  EXPECT_EQ(decrypt.iv.size(), 12u);
  EXPECT_EQ(decrypt.tag.size(), 16u);
  EXPECT_EQ(std::string(decrypt.ciphertext_metadata->begin(), decrypt.ciphertext_metadata->end()),
            "key_version=1");
}

TEST(ParseRequest, AcceptsUnknownFieldsAndUnknownKmsOperations) {
  auto parsed = parse_request(
      wire::Operation::kGetHealthStatus,
      R"({"requestMetadata":{"kmsRequestId":"r","kmsOperation":"BulkFutureThing","new":1},"x":[]})");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  EXPECT_EQ(parsed->metadata.kms_operation, "BulkFutureThing");
  auto metadata = parse_request(
      wire::Operation::kGetKeyMetadata,
      R"({"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"DescribeKey","kmsRequestId":"r"}})");
  EXPECT_TRUE(metadata.has_value());
}

TEST(ParseRequest, RequiresTheMetadataOfEachOperation) {
  expect_rejected(wire::Operation::kGetHealthStatus, "{}", XksError::kValidation);
  expect_rejected(wire::Operation::kGetHealthStatus, R"({"requestMetadata":{}})",
                  XksError::kValidation);
  expect_rejected(wire::Operation::kGetHealthStatus, R"({"requestMetadata":{"kmsRequestId":"r"}})",
                  XksError::kValidation);
  expect_rejected(wire::Operation::kGetKeyMetadata,
                  R"({"requestMetadata":{"kmsOperation":"CreateKey","kmsRequestId":"r"}})",
                  XksError::kValidation);
  expect_rejected(wire::Operation::kEncrypt,
                  R"({"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"Encrypt",)"
                  R"("kmsRequestId":"r"},"plaintext":"AA==","encryptionAlgorithm":"AES_GCM"})",
                  XksError::kValidation);  // no kmsKeyArn
  expect_rejected(wire::Operation::kGetHealthStatus,
                  R"({"requestMetadata":{"kmsRequestId":7,"kmsOperation":"x"}})",
                  XksError::kValidation);
  expect_rejected(wire::Operation::kGetHealthStatus, R"({"requestMetadata":"x"})",
                  XksError::kValidation);
}

TEST(ParseRequest, RejectsMalformedBodies) {
  for (const char* bad : {"", "[]", "null", "{", "{\"requestMetadata\":", "\"text\"", "{}}"}) {
    expect_rejected(wire::Operation::kGetHealthStatus, bad, XksError::kValidation);
  }
}

TEST(ParseRequest, ValidatesEncryptInputs) {
  const std::string ok = R"(,"plaintext":"AA==","encryptionAlgorithm":"AES_GCM")";
  EXPECT_TRUE(parse_request(wire::Operation::kEncrypt, body(ok)).has_value());
  expect_rejected(wire::Operation::kEncrypt, body(R"(,"encryptionAlgorithm":"AES_GCM")"),
                  XksError::kValidation);
  expect_rejected(wire::Operation::kEncrypt, body(R"(,"plaintext":"AA==")"), XksError::kValidation);
  expect_rejected(wire::Operation::kEncrypt,
                  body(R"(,"plaintext":"AA==","encryptionAlgorithm":"AES_CBC")"),
                  XksError::kValidation);
  expect_rejected(wire::Operation::kEncrypt,
                  body(R"(,"plaintext":"AA=","encryptionAlgorithm":"AES_GCM")"),
                  XksError::kValidation);
  expect_rejected(wire::Operation::kEncrypt,
                  body(ok + R"(,"additionalAuthenticatedData":"not base64!")"),
                  XksError::kValidation);
  expect_rejected(wire::Operation::kEncrypt,
                  body(ok + R"(,"ciphertextDataIntegrityValueAlgorithm":"SHA_512")"),
                  XksError::kValidation);
  std::string big_aad = wire::base64_encode(std::vector<std::uint8_t>(8193, 1));
  expect_rejected(wire::Operation::kEncrypt,
                  body(ok + R"(,"additionalAuthenticatedData":")" + big_aad + "\""),
                  XksError::kValidation);
  std::string max_aad = wire::base64_encode(std::vector<std::uint8_t>(8192, 1));
  EXPECT_TRUE(parse_request(wire::Operation::kEncrypt,
                            body(ok + R"(,"additionalAuthenticatedData":")" + max_aad + "\""))
                  .has_value());
}

TEST(ParseRequest, ValidatesDecryptInputs) {
  auto decrypt = [](const std::string& iv, const std::string& tag, const std::string& extra) {
    return body(R"(,"ciphertext":"AAAA","encryptionAlgorithm":"AES_GCM","initializationVector":")" +
                iv + R"(","authenticationTag":")" + tag + "\"" + extra);
  };
  const std::string iv12 = wire::base64_encode(std::vector<std::uint8_t>(12, 1));
  const std::string iv16 = wire::base64_encode(std::vector<std::uint8_t>(16, 1));
  const std::string tag16 = wire::base64_encode(std::vector<std::uint8_t>(16, 2));
  EXPECT_TRUE(parse_request(wire::Operation::kDecrypt, decrypt(iv12, tag16, "")).has_value());
  EXPECT_TRUE(parse_request(wire::Operation::kDecrypt, decrypt(iv16, tag16, "")).has_value());
  expect_rejected(wire::Operation::kDecrypt,
                  decrypt(wire::base64_encode(std::vector<std::uint8_t>(13, 1)), tag16, ""),
                  XksError::kInvalidCiphertext);
  expect_rejected(wire::Operation::kDecrypt,
                  decrypt(iv12, wire::base64_encode(std::vector<std::uint8_t>(15, 1)), ""),
                  XksError::kInvalidCiphertext);
  expect_rejected(wire::Operation::kDecrypt,
                  decrypt(iv12, tag16,
                          R"(,"ciphertextMetadata":")" +
                              wire::base64_encode(std::vector<std::uint8_t>(21, 1)) + "\""),
                  XksError::kValidation);
  EXPECT_TRUE(
      parse_request(wire::Operation::kDecrypt,
                    decrypt(iv12, tag16,
                            R"(,"ciphertextMetadata":")" +
                                wire::base64_encode(std::vector<std::uint8_t>(20, 1)) + "\""))
          .has_value());
  expect_rejected(wire::Operation::kDecrypt,
                  body(R"(,"encryptionAlgorithm":"AES_GCM","initializationVector":")" + iv12 +
                       R"(","authenticationTag":")" + tag16 + "\""),
                  XksError::kValidation);  // no ciphertext
}

TEST(Responses, AreCompactSingleLineJson) {
  std::vector<std::string_view> usage = {"ENCRYPT", "DECRYPT"};
  EXPECT_EQ(metadata_response(usage, true),
            R"({"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"})");
  EXPECT_EQ(metadata_response(usage, false),
            R"({"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"DISABLED"})");
  std::vector<std::uint8_t> plaintext = {'H', 'i'};
  EXPECT_EQ(decrypt_response(plaintext), R"({"plaintext":"SGk="})");
  std::vector<std::uint8_t> ct(2, 0), iv(12, 0), tag(16, 0);
  std::string encrypted = encrypt_response(ct, iv, tag, {}, "");
  EXPECT_EQ(encrypted.find('\n'), std::string::npos);
  EXPECT_NE(encrypted.find(R"("ciphertext":"AAA=")"), std::string::npos);
  EXPECT_EQ(encrypted.find("ciphertextDataIntegrityValue"), std::string::npos);
  EXPECT_EQ(encrypted.find("ciphertextMetadata"), std::string::npos);
  std::vector<std::uint8_t> metadata = {1, 0, 2};
  std::string versioned = encrypt_response(ct, iv, tag, metadata, "abc=");
  EXPECT_NE(versioned.find(R"("ciphertextDataIntegrityValue":"abc=")"), std::string::npos);
  EXPECT_NE(versioned.find(R"("ciphertextMetadata":"AQAC")"), std::string::npos);
  FleetMember member{"serial-1", "SoftHSM \"v2\"", "ACTIVE"};
  EXPECT_EQ(
      health_response(2, "v", "m", "e", {&member, 1}),
      R"({"xksProxyFleetSize":2,"xksProxyVendor":"v","xksProxyModel":"m","ekmVendor":"e",)"
      R"("ekmFleetDetails":[{"id":"serial-1","model":"SoftHSM \"v2\"","healthStatus":"ACTIVE"}]})");
}

TEST(Cdiv, TheSpecsWorkedExample) {
  auto decode = [](std::string_view text) { return *wire::base64_decode(text); };
  EXPECT_EQ(cdiv(decode("cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n"),
                 decode("a2V5X3ZlcnNpb249MQ=="), decode("HMrlRw85cAJUd5Ax"),
                 decode("ghxkK1txeDNn3q8Y"), decode("vBxN2ncH1oEkR8WVXpmyYQ==")),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=");
}

}  // namespace
}  // namespace xks::proxy
