// The Verifier against requests signed the way AWS KMS signs them (host;x-amz-date), and every
// way a request can fail: tampering, wrong keys, clock skew, missing or malformed parts.
#include "xks/sigv4/verifier.h"

#include <gtest/gtest.h>

#include <string>

#include "owned_request.h"
#include "xks/sigv4/canonical.h"
#include "xks/sigv4/signer.h"

namespace xks::sigv4 {
namespace {

using namespace std::chrono;

const Credential kOld{"AKIAXKSOLDOLDOLDOLD2", "oldSecretoldSecretoldSecretoldSecretoldSecretOLD="};
const Credential kNew{"AKIAXKSNEWNEWNEWNEW7", "newSecret/newSecret+newSecretnewSecretnewSecret12"};
const sys_seconds kNow = sys_days{year{2026} / November / 23} + hours{10} + minutes{20};

class VerifierTest : public testing::Test {
 protected:
  VerifierTest() { request_ = kms_request(); }

  // A request as AWS KMS sends it: only host and x-amz-date are signed; content-type is not.
  static test::OwnedRequest kms_request() {
    test::OwnedRequest request;
    request.path = "/example/kms/xks/v1/keys/key-1/encrypt";
    request.headers = {{"Host", "xks.example.com"}, {"X-Amz-Date", format_amz_date(kNow)}};
    request.body =
        R"({"requestMetadata":{"kmsRequestId":"r-1","kmsOperation":"Encrypt"},"plaintext":"AA=="})";
    return request;
  }

  // Signs every header the request has now, then adds content-type unsigned (as KMS does).
  void sign(const Credential& credential, std::string region = "us-east-1",
            std::string service = std::string(kXksService)) {
    request_.remove_header("Authorization");
    Signer signer(credential, std::move(region), std::move(service));
    std::string amz_date;
    for (const auto& [name, value] : request_.headers) {
      if (name == "X-Amz-Date")
        amz_date = value;
    }
    request_.headers.emplace_back("Authorization", signer.authorization(request_.view(), amz_date));
    request_.headers.emplace_back("Content-Type", "application/json");
  }

  tl::expected<std::reference_wrapper<const Credential>, Failure> verify(sys_seconds now = kNow) {
    now_ = now;
    return verifier_.verify(request_.view());
  }

  void expect_failure(Failure failure, sys_seconds now = kNow) {
    auto result = verify(now);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(failure_name(result.error()), failure_name(failure));
  }

  std::string& authorization() {
    for (auto& [name, value] : request_.headers) {
      if (name == "Authorization")
        return value;
    }
    throw std::logic_error("request is not signed");
  }

  void replace_in_authorization(const std::string& from, const std::string& to) {
    std::string& value = authorization();
    std::size_t at = value.find(from);
    ASSERT_NE(at, std::string::npos) << value;
    value.replace(at, from.size(), to);
  }

  test::OwnedRequest request_;
  sys_seconds now_ = kNow;
  // The credential a verification returns lives as long as the Verifier.
  Verifier verifier_{{kOld, kNew}, {"us-east-1", "eu-west-3"}, [this] { return now_; }};
};

TEST_F(VerifierTest, AcceptsAKmsSignedRequestAndNamesTheCredential) {
  sign(kNew);
  auto result = verify();
  ASSERT_TRUE(result.has_value()) << failure_name(result.error());
  EXPECT_EQ(result->get().access_key_id, kNew.access_key_id);
}

TEST_F(VerifierTest, AcceptsEitherCredentialDuringRotation) {
  sign(kOld);
  auto result = verify();
  ASSERT_TRUE(result.has_value()) << failure_name(result.error());
  EXPECT_EQ(result->get().access_key_id, kOld.access_key_id);
}

TEST_F(VerifierTest, AcceptsAnyAllowedRegion) {
  sign(kOld, "eu-west-3");
  EXPECT_TRUE(verify().has_value());
}

TEST_F(VerifierTest, RejectsATamperedBody) {
  sign(kNew);
  request_.body[request_.body.size() - 3] = 'B';
  expect_failure(Failure::kSignatureMismatch);
}

TEST_F(VerifierTest, RejectsATamperedPath) {
  sign(kNew);
  request_.path = "/example/kms/xks/v1/keys/key-2/encrypt";
  expect_failure(Failure::kSignatureMismatch);
}

TEST_F(VerifierTest, RejectsATamperedMethod) {
  sign(kNew);
  request_.method = "PUT";
  expect_failure(Failure::kSignatureMismatch);
}

TEST_F(VerifierTest, RejectsATamperedHost) {
  sign(kNew);
  request_.set_header("Host", "xks.example.com:444");
  expect_failure(Failure::kSignatureMismatch);
}

TEST_F(VerifierTest, RejectsATamperedDate) {
  sign(kNew);
  request_.set_header("X-Amz-Date", format_amz_date(kNow + seconds{1}));
  expect_failure(Failure::kSignatureMismatch);
}

TEST_F(VerifierTest, RejectsATamperedSignature) {
  sign(kNew);
  std::string& value = authorization();
  value.back() = value.back() == '0' ? '1' : '0';
  expect_failure(Failure::kSignatureMismatch);
}

TEST_F(VerifierTest, RejectsTheWrongSecret) {
  sign({kNew.access_key_id, kOld.secret_access_key});
  expect_failure(Failure::kSignatureMismatch);
}

TEST_F(VerifierTest, RejectsAnUnknownAccessKeyId) {
  sign({"AKIAXKSUNKNOWNUNKNOW", kNew.secret_access_key});
  expect_failure(Failure::kUnknownAccessKeyId);
}

TEST_F(VerifierTest, RejectsAnAccessKeyIdWithAPrefixOrSuffixAdded) {
  sign({"A" + kNew.access_key_id, kNew.secret_access_key});
  expect_failure(Failure::kUnknownAccessKeyId);
  sign({kNew.access_key_id + "A", kNew.secret_access_key});
  expect_failure(Failure::kUnknownAccessKeyId);
}

TEST_F(VerifierTest, RejectsAnAccessKeyIdInAnotherCase) {
  std::string lower = kNew.access_key_id;
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  sign({lower, kNew.secret_access_key});
  expect_failure(Failure::kUnknownAccessKeyId);
}

TEST_F(VerifierTest, RejectsARegionOutsideTheKeyStore) {
  sign(kNew, "ap-south-1");
  expect_failure(Failure::kRegionNotAllowed);
}

TEST_F(VerifierTest, RejectsAnotherService) {
  sign(kNew, "us-east-1", "kms");
  expect_failure(Failure::kWrongService);
}

TEST_F(VerifierTest, AllowsFiveMinutesOfSkewEachWay) {
  sign(kNew);
  EXPECT_TRUE(verify(kNow + minutes{5}).has_value());
  EXPECT_TRUE(verify(kNow - minutes{5}).has_value());
}

TEST_F(VerifierTest, RejectsFiveMinutesAndOneSecondOfSkewEachWay) {
  sign(kNew);
  expect_failure(Failure::kClockSkew, kNow + minutes{5} + seconds{1});
  expect_failure(Failure::kClockSkew, kNow - minutes{5} - seconds{1});
}

TEST_F(VerifierTest, RejectsAScopeDayOtherThanTheRequestDay) {
  sign(kNew);
  replace_in_authorization("/20261123/", "/20261122/");
  expect_failure(Failure::kScopeDateMismatch);
}

TEST_F(VerifierTest, RejectsARequestWithoutSignedHost) {
  request_.remove_header("Host");
  sign(kNew);
  request_.headers.emplace_back("Host", "xks.example.com");
  expect_failure(Failure::kHostNotSigned);
}

TEST_F(VerifierTest, RejectsARequestWithoutSignedDate) {
  std::string date = format_amz_date(kNow);
  request_.remove_header("X-Amz-Date");
  request_.headers.emplace_back("X-Custom", "1");
  Signer signer(kNew, "us-east-1", std::string(kXksService));
  request_.headers.emplace_back("Authorization", signer.authorization(request_.view(), date));
  request_.headers.emplace_back("X-Amz-Date", date);
  expect_failure(Failure::kDateNotSigned);
}

TEST_F(VerifierTest, RejectsAMissingSignedHeader) {
  request_.headers.emplace_back("X-Custom", "1");
  sign(kNew);
  request_.remove_header("X-Custom");
  expect_failure(Failure::kSignedHeaderMissing);
}

TEST_F(VerifierTest, RejectsAMissingAuthorization) {
  expect_failure(Failure::kMissingAuthorization);
}

TEST_F(VerifierTest, RejectsTwoAuthorizationHeaders) {
  sign(kNew);
  request_.headers.emplace_back("authorization", authorization());
  expect_failure(Failure::kDuplicateAuthorization);
}

TEST_F(VerifierTest, RejectsAMissingOrRepeatedDate) {
  sign(kNew);
  std::string date = format_amz_date(kNow);
  request_.remove_header("X-Amz-Date");
  expect_failure(Failure::kMissingDate);
  request_.headers.emplace_back("X-Amz-Date", date);
  request_.headers.emplace_back("x-amz-date", date);
  expect_failure(Failure::kMissingDate);
}

TEST_F(VerifierTest, RejectsAMalformedDate) {
  sign(kNew);
  for (const char* bad : {"20261123T102000", "2026-11-23T10:20:00Z", "20261123T252000Z"}) {
    request_.set_header("X-Amz-Date", bad);
    expect_failure(Failure::kMalformedDate);
  }
}

TEST_F(VerifierTest, RejectsAnUpperCaseHexSignature) {
  sign(kNew);
  std::string& value = authorization();
  std::size_t at = value.find("Signature=") + 10;
  for (std::size_t i = at; i < value.size(); ++i) {
    value[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(value[i])));
  }
  expect_failure(Failure::kMalformedSignature);
}

TEST_F(VerifierTest, CanonicalisesHeaderValuesAsSigV4Requires) {
  request_.headers.emplace_back("X-Custom", "a   b");
  request_.headers.emplace_back("x-custom", "c");
  sign(kNew);
  // Same canonical form: extra outer and inner whitespace, another name case.
  request_.remove_header("X-Custom");
  request_.remove_header("x-custom");
  request_.headers.emplace_back("X-CUSTOM", "  a b ");
  request_.headers.emplace_back("x-Custom", "\tc");
  EXPECT_TRUE(verify().has_value());
  // Repeated values are joined in order: swapping them breaks the signature.
  request_.remove_header("X-CUSTOM");
  request_.headers.emplace_back("X-CUSTOM", "a b");
  expect_failure(Failure::kSignatureMismatch);
}

TEST_F(VerifierTest, RefusesDuplicateAccessKeyIds) {
  EXPECT_THROW(Verifier({kOld, {kOld.access_key_id, "other"}}, {"us-east-1"}),
               std::invalid_argument);
}

}  // namespace
}  // namespace xks::sigv4
