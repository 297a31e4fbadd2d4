// xks-load's requests: signed so that the project's Verifier (cross-checked against botocore)
// accepts them, shaped as the XKS API asks, mixed by weight; and its judging of answers.
#include "workload.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <set>

#include "xks/sigv4/verifier.h"

namespace xks::load {
namespace {

Target demo_target() {
  Target target;
  target.host = "proxy.example";
  target.port = "8443";
  target.uri_prefix = "/ks1";
  target.access_key_id = "AKIAIOSFODNN7EXAMPLE";
  target.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  return target;
}

boost::json::object body_of(const PreparedRequest& request) {
  return boost::json::parse(request.body).as_object();
}

TEST(RequestFactory, SignsAsKmsDoesWithHostAndDateOnly) {
  Target target = demo_target();
  WorkloadMix mix;
  RequestFactory factory(target, mix, nullptr, 1);
  xks::sigv4::Verifier verifier({{target.access_key_id, target.secret_access_key}}, {"us-east-1"});
  PreparedRequest request = factory.make(Operation::kEncrypt);
  const xks::sigv4::Header headers[] = {{"host", "proxy.example:8443"},
                                        {"x-amz-date", request.amz_date},
                                        {"authorization", request.authorization}};
  EXPECT_TRUE(verifier.verify({"POST", request.path, "", headers, request.body}));
  EXPECT_NE(request.authorization.find("SignedHeaders=host;x-amz-date,"), std::string::npos);
  EXPECT_NE(request.authorization.find("/us-east-1/kms-xks-proxy/aws4_request"), std::string::npos);
  // A changed body no longer verifies.
  std::string tampered = request.body + " ";
  EXPECT_FALSE(verifier.verify({"POST", request.path, "", headers, tampered}));
  // The HTTP/1.1 form carries the same headers.
  std::string wire = "what an earlier request left in the buffer";
  factory.http1(request, wire);
  EXPECT_EQ(
      wire.rfind("POST /ks1/kms/xks/v1/keys/foo/encrypt HTTP/1.1\r\nHost: proxy.example:8443\r\n",
                 0),
      0u);
  EXPECT_NE(wire.find("\r\nAuthorization: " + request.authorization + "\r\n"), std::string::npos);
  EXPECT_TRUE(wire.ends_with("\r\n\r\n" + request.body));
}

TEST(RequestFactory, PortFourFourThreeIsLeftOutOfTheHost) {
  Target target = demo_target();
  target.port = "443";
  EXPECT_EQ(target.authority(), "proxy.example");
}

TEST(RequestFactory, BodiesFollowTheXksApi) {
  Target target = demo_target();
  WorkloadMix mix;
  mix.plaintext_bytes = 100;
  mix.aad_bytes = 20;
  mix.cdiv = true;
  RequestFactory factory(target, mix, nullptr, 2);
  PreparedRequest encrypt = factory.make(Operation::kEncrypt);
  auto body = body_of(encrypt);
  EXPECT_EQ(body.at("plaintext").as_string(), encrypt.plaintext);
  EXPECT_EQ(encrypt.plaintext.size(), 136u);  // base64 of 100 bytes
  EXPECT_EQ(body.at("additionalAuthenticatedData").as_string().size(), 28u);
  EXPECT_EQ(body.at("ciphertextDataIntegrityValueAlgorithm").as_string(), "SHA_256");
  EXPECT_EQ(body.at("encryptionAlgorithm").as_string(), "AES_GCM");
  EXPECT_EQ(body.at("requestMetadata").at("kmsOperation").as_string(), "Encrypt");
  // A fresh UUID-shaped kmsRequestId on every request.
  std::set<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    std::string id(body_of(factory.make(Operation::kGetKeyMetadata))
                       .at("requestMetadata")
                       .at("kmsRequestId")
                       .as_string());
    EXPECT_EQ(id.size(), 36u);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
  auto health = body_of(factory.make(Operation::kGetHealthStatus));
  EXPECT_EQ(health.at("requestMetadata").at("kmsOperation").as_string(), "KmsHealthCheck");
  EXPECT_TRUE(factory.make(Operation::kGetHealthStatus).path.ends_with("/kms/xks/v1/health"));
}

TEST(RequestFactory, DecryptsReplaySealedRecordsAndMixFollowsWeights) {
  Target target = demo_target();
  WorkloadMix mix;
  mix.weights = {1, 3, 0, 0};
  auto sealed = std::make_shared<std::vector<SealedRecord>>();
  sealed->push_back({"k1", "cGxhaW4=", "YWFk", "Y2lwaGVy", "aXZpdml2aXZpdml2", "dGFn", "bWV0YQ=="});
  RequestFactory factory(target, mix, sealed, 3);
  int decrypts = 0, encrypts = 0;
  for (int i = 0; i < 4000; ++i) {
    Operation operation = factory.pick();
    ASSERT_TRUE(operation == Operation::kEncrypt || operation == Operation::kDecrypt);
    (operation == Operation::kDecrypt ? decrypts : encrypts)++;
  }
  EXPECT_NEAR(decrypts / 4000.0, 0.75, 0.03);
  PreparedRequest decrypt = factory.make(Operation::kDecrypt);
  auto body = body_of(decrypt);
  EXPECT_TRUE(decrypt.path.ends_with("/keys/k1/decrypt"));
  EXPECT_EQ(body.at("ciphertext").as_string(), "Y2lwaGVy");
  EXPECT_EQ(body.at("initializationVector").as_string(), "aXZpdml2aXZpdml2");
  EXPECT_EQ(body.at("authenticationTag").as_string(), "dGFn");
  EXPECT_EQ(body.at("additionalAuthenticatedData").as_string(), "YWFk");
  EXPECT_EQ(body.at("ciphertextMetadata").as_string(), "bWV0YQ==");
  EXPECT_EQ(decrypt.plaintext, "cGxhaW4=");
  // Without sealed records there are no decrypts.
  RequestFactory unsealed(target, mix, nullptr, 4);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(unsealed.pick(), Operation::kEncrypt);
}

// The load loop reuses one PreparedRequest per connection: each operation built into it must
// keep nothing of the one before, and still verify.
TEST(RequestFactory, AReusedRequestKeepsNothingOfTheLastOne) {
  Target target = demo_target();
  WorkloadMix mix;
  mix.aad_bytes = 16;
  auto sealed = std::make_shared<std::vector<SealedRecord>>();
  sealed->push_back({"k1", "cGxhaW4=", "", "Y2lwaGVy", "aXZpdml2aXZpdml2", "dGFn", ""});
  RequestFactory factory(target, mix, sealed, 6);
  xks::sigv4::Verifier verifier({{target.access_key_id, target.secret_access_key}}, {"us-east-1"});
  PreparedRequest request;
  for (Operation operation : {Operation::kEncrypt, Operation::kDecrypt, Operation::kEncrypt,
                              Operation::kGetHealthStatus, Operation::kGetKeyMetadata}) {
    factory.make(operation, request);
    auto body = body_of(request);
    const xks::sigv4::Header headers[] = {{"host", "proxy.example:8443"},
                                          {"x-amz-date", request.amz_date},
                                          {"authorization", request.authorization}};
    EXPECT_TRUE(verifier.verify({"POST", request.path, "", headers, request.body}));
    EXPECT_EQ(request.operation, operation);
    EXPECT_TRUE(request.path.ends_with("/" + std::string(wire::uri_name(operation))));
    EXPECT_EQ(request.path.rfind("/ks1/kms/xks/v1/", 0), 0u);
    switch (operation) {
      case Operation::kEncrypt:
        EXPECT_EQ(request.key_id, "foo");
        EXPECT_EQ(body.at("plaintext").as_string(), request.plaintext);
        EXPECT_EQ(body.at("additionalAuthenticatedData").as_string(), request.aad);
        EXPECT_EQ(request.aad.size(), 24u);
        break;
      case Operation::kDecrypt:
        EXPECT_EQ(request.key_id, "k1");
        EXPECT_EQ(request.plaintext, "cGxhaW4=");
        EXPECT_TRUE(request.aad.empty());
        EXPECT_FALSE(body.contains("additionalAuthenticatedData"));
        EXPECT_FALSE(body.contains("ciphertextMetadata"));
        break;
      case Operation::kGetHealthStatus:
        EXPECT_TRUE(request.key_id.empty());
        EXPECT_TRUE(request.plaintext.empty());
        EXPECT_TRUE(request.aad.empty());
        EXPECT_EQ(body.size(), 1u);
        break;
      case Operation::kGetKeyMetadata:
        EXPECT_EQ(request.key_id, "foo");
        EXPECT_TRUE(request.plaintext.empty());
        EXPECT_EQ(body.size(), 1u);
        break;
    }
  }
}

TEST(Judge, NamesErrorsAndChecksAnswersInVerifyMode) {
  Target target = demo_target();
  WorkloadMix mix;
  mix.aad_bytes = 8;
  mix.cdiv = true;
  RequestFactory factory(target, mix, nullptr, 5);
  PreparedRequest encrypt = factory.make(Operation::kEncrypt);
  EXPECT_EQ(judge(encrypt, 404, R"({"errorName":"KeyNotFoundException"})", false).label,
            "404 KeyNotFoundException");
  EXPECT_EQ(judge(encrypt, 502, "<html>", false).label, "502");
  EXPECT_EQ(judge(encrypt, 200, "not json", false).kind, OutcomeKind::kOk);
  EXPECT_EQ(judge(encrypt, 200, "not json", true).kind, OutcomeKind::kVerify);
  // A hand-made Encrypt of 32 zero bytes with AAD "aad"; the CDIV below was computed with
  // Python's hashlib as base64(SHA-256(AAD || IV || ciphertext || tag)).
  PreparedRequest known = encrypt;
  known.plaintext = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  known.aad = "YWFk";
  std::string fields =
      R"({"ciphertext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",)"
      R"("initializationVector":"AQIDBAUGBwgJCgsM","authenticationTag":"AAECAwQFBgcICQoLDA0ODw==",)";
  EXPECT_EQ(
      judge(known, 200,
            fields +
                R"("ciphertextDataIntegrityValue":"A0IGfQ6toeq7ucMvntpad19MaUsHdn7Fp+dO141XIIA="})",
            true)
          .kind,
      OutcomeKind::kOk);
  EXPECT_EQ(
      judge(known, 200,
            fields +
                R"("ciphertextDataIntegrityValue":"B0IGfQ6toeq7ucMvntpad19MaUsHdn7Fp+dO141XIIA="})",
            true)
          .label,
      "verify: wrong ciphertextDataIntegrityValue");
  EXPECT_EQ(judge(known, 200, fields + R"("x":1})", true).label,
            "verify: wrong ciphertextDataIntegrityValue");
  std::string short_ciphertext =
      R"({"ciphertext":"AAEC","initializationVector":"AQIDBAUGBwgJCgsM","authenticationTag":"AAECAwQFBgcICQoLDA0ODw=="})";
  EXPECT_EQ(judge(known, 200, short_ciphertext, true).label,
            "verify: ciphertext length differs from the plaintext's");
  auto sealed = std::make_shared<std::vector<SealedRecord>>();
  sealed->push_back({"foo", "cGxhaW4=", "", "Y2lwaGVy", "aXZpdml2aXZpdml2", "dGFn", ""});
  RequestFactory decrypts(target, mix, sealed, 6);
  PreparedRequest decrypt = decrypts.make(Operation::kDecrypt);
  EXPECT_EQ(judge(decrypt, 200, R"({"plaintext":"cGxhaW4="})", true).kind, OutcomeKind::kOk);
  EXPECT_EQ(judge(decrypt, 200, R"({"plaintext":"b3RoZXI="})", true).label,
            "verify: decrypt returned another plaintext");
}

TEST(SealFromAnswer, KeepsWhatDecryptNeeds) {
  Target target = demo_target();
  WorkloadMix mix;
  RequestFactory factory(target, mix, nullptr, 7);
  PreparedRequest encrypt = factory.make(Operation::kEncrypt, "k9");
  auto sealed = seal_from_answer(
      encrypt,
      R"({"ciphertext":"Y2lwaGVy","initializationVector":"aXY=","authenticationTag":"dGFn","ciphertextMetadata":"bQ=="})");
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->key_id, "k9");
  EXPECT_EQ(sealed->plaintext, encrypt.plaintext);
  EXPECT_EQ(sealed->ciphertext_metadata, "bQ==");
  EXPECT_FALSE(seal_from_answer(encrypt, R"({"ciphertext":"Y2lwaGVy"})"));
  EXPECT_FALSE(seal_from_answer(encrypt, "[]"));
}

}  // namespace
}  // namespace xks::load
