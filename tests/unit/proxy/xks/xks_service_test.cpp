// The four XKS APIs end to end below the transport: requests signed with SigV4, answered from
// the real SoftHSM, every error of the spec's table the proxy can produce.
#include "xks/proxy/xks/xks_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <fstream>
#include <future>
#include <latch>
#include <optional>
#include <thread>

#include "hsm_fixture.h"
#include "xks/proxy/ops/metrics.h"
#include "xks/proxy/xks/xks_metrics.h"
#include "xks/sigv4/canonical.h"
#include "xks/sigv4/signer.h"
#include "xks/wire/base64.h"
#include "xks_json.h"

namespace xks::proxy {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

const sigv4::Credential kTenantA{"AKIATENANTAAAAAAAAAA",
                                 "tenantAsecrettenantAsecrettenantAsecret1234"};
const sigv4::Credential kTenantANext{"AKIATENANTANEXTNEXT2",
                                     "tenantAnextSecret/tenantAnextSecret+tenantA99"};
const sigv4::Credential kRestricted{"AKIARESTRICTEDRESTR3",
                                    "restrictedSecretrestrictedSecretrestrict"};

const std::string kMetadata =
    R"("requestMetadata":{"awsPrincipalArn":"arn:aws:iam::123456789012:user/Alice",)"
    R"("kmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/1","kmsOperation":"Encrypt",)"
    R"("kmsRequestId":"4112f4d6-db54-4af4-ae30-c55a22a8dfae"})";

class XksServiceTest : public test::HsmFixture {
 protected:
  void SetUp() override {
    HsmFixture::SetUp();
    for (const char* label : {"foo", "xks-health"})
      ASSERT_NO_FATAL_FAILURE(create_key(label));
    ASSERT_NO_FATAL_FAILURE(create_key("encrypt_only_key", {true, false}));
    ASSERT_NO_FATAL_FAILURE(create_key("decrypt_only_key", {false, true}));
    ASSERT_NO_FATAL_FAILURE(create_key("impotent_key", {false, false}));
    // The proxy's own way in: a fleet of one backend on this token (it loads the module
    // itself, which is initialised once per process).
    module_.reset();
    std::string pin_file = (token_.dir() / "pin").string();
    std::ofstream(pin_file) << token_.user_pin() << "\n";
    auto backend = hsm::Backend::start(
        {.module = {test::kSoftHsmModule},
         .token = {hsm::TokenSelector::By::kLabel, token_.label()},
         .pin = {hsm::PinSource::From::kFile, pin_file, {}},
         .profile = *hsm::vendor_profile("softhsm"),
         .health_key = "xks-health",
         .sessions = 2,
         .workers = 2,
         .circuit_breaker = {.consecutive_failures = 2, .open_for = std::chrono::hours(1)},
         .on_event = {},
         .on_key_change = {},
         .on_keys_read = {}});
    ASSERT_TRUE(backend.has_value()) << backend.error().message;
    std::vector<std::pair<std::string, std::unique_ptr<hsm::Backend>>> members;
    members.emplace_back("test-hsm", std::move(*backend));
    auto fleet = hsm::Fleet::assemble(std::move(members));
    ASSERT_TRUE(fleet.has_value()) << fleet.error().message;
    fleet_ = std::move(*fleet);
    config_.keystores = {{"/tenant-a",
                          {"us-east-1"},
                          {{kTenantA, std::nullopt, "", ""}, {kTenantANext, std::nullopt, "", ""}},
                          {"foo", "encrypt_only_key", "decrypt_only_key", "impotent_key"},
                          {},
                          {},
                          {},
                          false,
                          {}},
                         {"/restricted",
                          {"us-east-1"},
                          {{kRestricted, std::nullopt, "", ""}},
                          {"foo"},
                          {},
                          {},
                          {},
                          false,
                          {}}};
    metrics_ = std::make_unique<XksMetrics>(registry_, std::vector<std::string>{"test-hsm"});
    audit_path_ = (token_.dir() / "audit.log").string();
    AuditConfig audit;
    audit.path = audit_path_;
    audit_ = *AuditLog::open(audit, registry_, "test");
    service_ = std::make_unique<XksService>(config_.keystores, *fleet_,
                                            ProxyIdentity{3, "xks-proxy project", "xks-proxy test"},
                                            metrics_.get(), audit_.get());
  }

  void TearDown() override {
    // As the Runtime does: the watch stops, the fleet runs what it holds, then the service goes.
    if (service_)
      service_->stop_deadline_watch();
    fleet_.reset();
    service_.reset();
    audit_.reset();
    metrics_.reset();
    HsmFixture::TearDown();
  }

  hsm::Backend& backend() { return *fleet_->member(0).backend; }

  // Returns once every HSM executor thread is free: everything queued before has run.
  void drain_executor() {
    std::latch both(2);
    std::promise<void> done[2];
    for (auto& promise : done) {
      ASSERT_TRUE(backend().executor().submit([&both, &promise] {
        both.arrive_and_wait();
        promise.set_value();
      }));
    }
    for (auto& promise : done)
      promise.get_future().wait();
  }

  HttpResponse call(const std::string& path, const std::string& body,
                    const sigv4::Credential& credential = kTenantA,
                    const std::string& method = "POST", std::chrono::milliseconds budget = 2000ms) {
    return handle(signed_request(path, body, credential, method), budget);
  }

  static HttpRequest signed_request(const std::string& path, const std::string& body,
                                    const sigv4::Credential& credential,
                                    const std::string& method) {
    HttpRequest request{
        method, path, {{"Host", "xks.example.com"}}, body, "CN=test-client", "192.0.2.7:4433"};
    std::string date = sigv4::format_amz_date(std::chrono::system_clock::now());
    request.headers.emplace_back("X-Amz-Date", date);
    std::vector<sigv4::Header> views;
    for (const auto& [name, value] : request.headers)
      views.push_back({name, value});
    sigv4::Signer signer(credential, "us-east-1", "kms-xks-proxy");
    request.headers.emplace_back("Authorization",
                                 signer.authorization({method, path, "", views, body}, date));
    request.headers.emplace_back("Content-Type", "application/json");
    return request;
  }

  // The service's answer, waited for (it may come from another thread).
  HttpResponse handle(HttpRequest request, std::chrono::milliseconds budget = 2000ms) {
    std::promise<HttpResponse> answer;
    auto now = XksService::Clock::now();
    service_->handle(std::move(request), now, now + budget,
                     [&answer](HttpResponse response) { answer.set_value(std::move(response)); });
    return answer.get_future().get();
  }

  static std::string error_name_of(const HttpResponse& response) {
    json::value body = json::parse(response.body);
    return std::string(body.at("errorName").as_string());
  }

  Config config_;
  metrics::Registry registry_;
  std::unique_ptr<XksMetrics> metrics_;
  std::string audit_path_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<hsm::Fleet> fleet_;
  std::unique_ptr<XksService> service_;
};

std::string metadata_body(const std::string& principal = "arn:aws:iam::123456789012:user/Alice") {
  return R"({"requestMetadata":{"awsPrincipalArn":")" + principal +
         R"(","kmsOperation":"DescribeKey","kmsRequestId":"r"}})";
}

std::string encrypt_body(const std::string& plaintext_b64, const std::string& extra = "") {
  return "{" + kMetadata + R"(,"plaintext":")" + plaintext_b64 +
         R"(","encryptionAlgorithm":"AES_GCM")" + extra + "}";
}

TEST_F(XksServiceTest, GetHealthStatusReportsTheHsm) {
  auto response =
      call("/tenant-a/kms/xks/v1/health",
           R"({"requestMetadata":{"kmsRequestId":"r","kmsOperation":"KmsHealthCheck"}})");
  ASSERT_EQ(response.status, 200) << response.body;
  json::object body = json::parse(response.body).as_object();
  EXPECT_EQ(body.at("xksProxyFleetSize").as_int64(), 3);
  EXPECT_EQ(body.at("xksProxyModel").as_string(), "xks-proxy test");
  EXPECT_EQ(body.at("ekmVendor").as_string(), "SoftHSM project");
  const json::array& fleet = body.at("ekmFleetDetails").as_array();
  ASSERT_EQ(fleet.size(), 1u);
  EXPECT_EQ(fleet[0].at("healthStatus").as_string(), "ACTIVE");
  EXPECT_NE(std::string(fleet[0].at("model").as_string()).find("SoftHSM"), std::string::npos);
}

TEST_F(XksServiceTest, GetKeyMetadataListsUsages) {
  const std::string body =
      R"({"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"CreateKey","kmsRequestId":"r"}})";
  auto foo = call("/tenant-a/kms/xks/v1/keys/foo/metadata", body);
  ASSERT_EQ(foo.status, 200) << foo.body;
  EXPECT_EQ(foo.body,
            R"({"keySpec":"AES_256","keyUsage":["ENCRYPT","DECRYPT"],"keyStatus":"ENABLED"})");
  auto decrypt_only = call("/tenant-a/kms/xks/v1/keys/decrypt_only_key/metadata", body);
  EXPECT_EQ(decrypt_only.body,
            R"({"keySpec":"AES_256","keyUsage":["DECRYPT"],"keyStatus":"ENABLED"})");
  auto missing = call("/tenant-a/kms/xks/v1/keys/no_such_key/metadata", body);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(error_name_of(missing), "KeyNotFoundException");
}

TEST_F(XksServiceTest, EncryptThenDecryptWithAadAndCdiv) {
  std::string aad = wire::base64_encode(std::vector<std::uint8_t>{'p', '=', 'n'});
  auto encrypted = call("/tenant-a/kms/xks/v1/keys/foo/encrypt",
                        encrypt_body("SGVsbG8gV29ybGQh",
                                     R"(,"additionalAuthenticatedData":")" + aad +
                                         R"(","ciphertextDataIntegrityValueAlgorithm":"SHA_256")"),
                        kTenantANext);
  ASSERT_EQ(encrypted.status, 200) << encrypted.body;
  json::object sealed = json::parse(encrypted.body).as_object();
  auto field = [&](const char* name) { return std::string(sealed.at(name).as_string()); };
  auto ciphertext = *wire::base64_decode(field("ciphertext"));
  auto iv = *wire::base64_decode(field("initializationVector"));
  auto tag = *wire::base64_decode(field("authenticationTag"));
  EXPECT_EQ(ciphertext.size(), 12u);
  EXPECT_EQ(iv.size(), 12u);
  EXPECT_EQ(tag.size(), 16u);
  // The key's version, bound into the AAD and the CDIV (spec appendix C).
  EXPECT_EQ(field("ciphertextMetadata"), "AQAB");  // format 1, version 1
  auto metadata = *wire::base64_decode(field("ciphertextMetadata"));
  EXPECT_EQ(field("ciphertextDataIntegrityValue"),
            cdiv(*wire::base64_decode(aad), metadata, iv, ciphertext, tag));

  std::string decrypt = "{" + kMetadata + R"(,"ciphertext":")" + field("ciphertext") +
                        R"(","encryptionAlgorithm":"AES_GCM","initializationVector":")" +
                        field("initializationVector") + R"(","authenticationTag":")" +
                        field("authenticationTag") + R"(","ciphertextMetadata":")" +
                        field("ciphertextMetadata") + R"(","additionalAuthenticatedData":")";
  auto decrypted = call("/tenant-a/kms/xks/v1/keys/foo/decrypt", decrypt + aad + "\"}");
  ASSERT_EQ(decrypted.status, 200) << decrypted.body;
  EXPECT_EQ(decrypted.body, R"({"plaintext":"SGVsbG8gV29ybGQh"})");

  auto wrong_aad = call("/tenant-a/kms/xks/v1/keys/foo/decrypt", decrypt + "cD1t\"}");
  EXPECT_EQ(wrong_aad.status, 400);
  EXPECT_EQ(error_name_of(wrong_aad), "InvalidCiphertextException");
  // Other metadata: not this proxy's, or another version.
  for (const char* other : {"AQ==", "AQAC", "AgAB"}) {
    std::string tampered = decrypt;
    tampered.replace(tampered.find("AQAB"), 4, other);
    EXPECT_EQ(error_name_of(call("/tenant-a/kms/xks/v1/keys/foo/decrypt", tampered + aad + "\"}")),
              "InvalidCiphertextException")
        << other;
  }
}

TEST_F(XksServiceTest, KeyUsageErrors) {
  auto cdiv_on_encrypt_only =
      call("/tenant-a/kms/xks/v1/keys/encrypt_only_key/encrypt",
           encrypt_body("AAAA", R"(,"ciphertextDataIntegrityValueAlgorithm":"SHA_256")"));
  EXPECT_EQ(cdiv_on_encrypt_only.status, 400);
  EXPECT_EQ(error_name_of(cdiv_on_encrypt_only), "InvalidKeyUsageException");
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/encrypt_only_key/encrypt", encrypt_body("AAAA")).status,
            200);
  EXPECT_EQ(error_name_of(
                call("/tenant-a/kms/xks/v1/keys/decrypt_only_key/encrypt", encrypt_body("AAAA"))),
            "InvalidKeyUsageException");
  EXPECT_EQ(
      error_name_of(call("/tenant-a/kms/xks/v1/keys/impotent_key/encrypt", encrypt_body("AAAA"))),
      "InvalidKeyUsageException");
}

TEST_F(XksServiceTest, RoutingAndAuthenticationErrors) {
  // A path under the caller's own key store that is not an XKS API (the conformance client's
  // "<prefix>/invalid" case).
  auto unknown_path = call("/tenant-a/invalid/kms/xks/v1/health", "{}");
  EXPECT_EQ(unknown_path.status, 404);
  EXPECT_EQ(error_name_of(unknown_path), "InvalidUriPathException");
  // Outside it, even a valid credential learns nothing of which paths exist.
  auto elsewhere = call("/tenant-b/kms/xks/v1/health", "{}");
  EXPECT_EQ(elsewhere.status, 401);
  EXPECT_EQ(error_name_of(elsewhere), "AuthenticationFailedException");
  // Without a valid signature, an unknown path and a known one answer alike: prefixes cannot
  // be enumerated.
  HttpRequest probe{"POST", "/tenant-b/kms/xks/v1/health", {{"Host", "h"}}, "{}", "", ""};
  auto probed = handle(probe, 1s);
  EXPECT_EQ(probed.status, 401);
  EXPECT_EQ(error_name_of(probed), "AuthenticationFailedException");
  auto forged = call("/tenant-b/kms/xks/v1/health", "{}",
                     {"AKIAXKSUNKNOWN234567", "unknownSecretunknownSecretunknownSecret123"});
  EXPECT_EQ(forged.status, 401);

  HttpRequest unsigned_request{"POST", "/tenant-a/kms/xks/v1/health", {{"Host", "h"}}, "{}", "",
                               ""};
  auto unsigned_response = handle(unsigned_request, 1s);
  EXPECT_EQ(unsigned_response.status, 401);
  EXPECT_EQ(error_name_of(unsigned_response), "AuthenticationFailedException");

  // Another key store's credential is unknown here.
  auto cross_tenant =
      call("/tenant-a/kms/xks/v1/health",
           R"({"requestMetadata":{"kmsRequestId":"r","kmsOperation":"x"}})", kRestricted);
  EXPECT_EQ(error_name_of(cross_tenant), "AuthenticationFailedException");

  auto get = call("/tenant-a/kms/xks/v1/keys/foo/metadata", "", kTenantA, "GET");
  EXPECT_EQ(get.status, 405);

  auto not_json = call("/tenant-a/kms/xks/v1/keys/foo/encrypt", "plaintext=1");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(error_name_of(not_json), "ValidationException");
}

TEST_F(XksServiceTest, AKeyOutsideTheAllowListIsNotFound) {
  const std::string body =
      R"({"requestMetadata":{"awsPrincipalArn":"a","kmsOperation":"DescribeKey","kmsRequestId":"r"}})";
  EXPECT_EQ(call("/restricted/kms/xks/v1/keys/foo/metadata", body, kRestricted).status, 200);
  auto hidden = call("/restricted/kms/xks/v1/keys/decrypt_only_key/metadata", body, kRestricted);
  EXPECT_EQ(hidden.status, 404);
  EXPECT_EQ(error_name_of(hidden), "KeyNotFoundException");
}

TEST_F(XksServiceTest, TheHealthKeyIsNeverServedEvenWhenAPatternMatchesIt) {
  config_.keystores[0].keys = {"*"};
  service_->reconfigure(config_.keystores);
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/impotent_key/metadata", metadata_body()).status, 200);
  auto health = call("/tenant-a/kms/xks/v1/keys/xks-health/encrypt", encrypt_body("AAAA"));
  EXPECT_EQ(health.status, 404);
  EXPECT_EQ(error_name_of(health), "KeyNotFoundException");
}

TEST_F(XksServiceTest, RulesDecideWithDenyWinningAndTheDecidingRuleIsCounted) {
  AuthorizationRule alice;
  alice.id = "alice";
  alice.principals = {"arn:aws:iam::*:user/Alice"};
  AuthorizationRule no_decrypt;
  no_decrypt.id = "no-decrypt";
  no_decrypt.deny = true;
  no_decrypt.operations = {"Decrypt"};
  config_.keystores[0].rules = {alice, no_decrypt};
  service_->reconfigure(config_.keystores);
  auto sealed = call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA"));
  ASSERT_EQ(sealed.status, 200) << sealed.body;
  json::object ciphertext = json::parse(sealed.body).as_object();
  std::string decrypt =
      "{" + kMetadata + R"(,"ciphertext":)" + json::serialize(ciphertext.at("ciphertext")) +
      R"(,"initializationVector":)" + json::serialize(ciphertext.at("initializationVector")) +
      R"(,"authenticationTag":)" + json::serialize(ciphertext.at("authenticationTag")) +
      R"(,"encryptionAlgorithm":"AES_GCM"})";
  auto denied = call("/tenant-a/kms/xks/v1/keys/foo/decrypt", decrypt);
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(error_name_of(denied), "AccessDeniedException");
  // Bob matches no allow rule.
  std::string bob = metadata_body("arn:aws:iam::123456789012:user/Bob");
  auto implicit = call("/tenant-a/kms/xks/v1/keys/foo/metadata", bob);
  EXPECT_EQ(implicit.status, 403);
  // Health is never gated.
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/health",
                 R"({"requestMetadata":{"kmsRequestId":"r","kmsOperation":"KmsHealthCheck"}})")
                .status,
            200);
  std::string text = registry_.serialize();
  EXPECT_NE(text.find(R"(xks_authz_denied_total{keystore="/tenant-a",rule="no-decrypt"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"x(xks_authz_denied_total{keystore="/tenant-a",rule="(no allow rule)"} 1)x"),
            std::string::npos)
      << text;
}

TEST_F(XksServiceTest, ABlockedKeyStoreRefusesKeyOperationsUntilUnblocked) {
  config_.keystores[0].block = {true, "alice", "incident", std::nullopt};
  service_->reconfigure(config_.keystores);
  for (const char* path : {"keys/foo/metadata", "keys/foo/encrypt", "keys/missing/metadata"}) {
    auto refused = call(std::string("/tenant-a/kms/xks/v1/") + path, encrypt_body("AAAA"));
    EXPECT_EQ(refused.status, 403) << path;
    EXPECT_EQ(error_name_of(refused), "AccessDeniedException");
  }
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/health",
                 R"({"requestMetadata":{"kmsRequestId":"r","kmsOperation":"KmsHealthCheck"}})")
                .status,
            200);
  // Other key stores are not affected.
  EXPECT_EQ(call("/restricted/kms/xks/v1/keys/foo/metadata", metadata_body(), kRestricted).status,
            200);
  config_.keystores[0].block = {};
  service_->reconfigure(config_.keystores);
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body()).status, 200);
  audit_.reset();  // written out
  std::ifstream audit(audit_path_);
  std::string log((std::istreambuf_iterator<char>(audit)), {});
  EXPECT_NE(log.find(R"("record":"config")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("event":"keystore_blocked","keystore":"/tenant-a","by":"alice")"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(R"("event":"keystore_unblocked")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"x("rule":"(blocked)")x"), std::string::npos) << log;
}

TEST_F(XksServiceTest, AnEmptyQuotaAnswersThrottlingWithoutTouchingTheHsm) {
  config_.keystores[0].quota.requests_per_second = 0.001;
  config_.keystores[0].quota.burst = 2;
  service_->reconfigure(config_.keystores);
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body()).status, 200);
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body()).status, 200);
  auto throttled = call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body());
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(error_name_of(throttled), "ThrottlingException");
  // A reload with the same quota keeps the empty bucket.
  service_->reconfigure(config_.keystores);
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body()).status, 429);
  std::string text = registry_.serialize();
  EXPECT_NE(text.find(R"(xks_throttled_total{keystore="/tenant-a",scope="keystore"} 2)"),
            std::string::npos)
      << text;
  // Only the two admitted requests reached the HSM.
  EXPECT_NE(
      text.find(
          R"(xks_hsm_operation_duration_seconds_count{hsm="test-hsm",operation="GetKeyMetadata"} 2)"),
      std::string::npos)
      << text;
}

TEST_F(XksServiceTest, AReconfigurationRotatesCredentials) {
  config_.keystores[0].credentials = {{kTenantANext, std::nullopt, "", ""}};
  service_->reconfigure(config_.keystores);
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body()).status, 401);
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body(), kTenantANext).status,
            200);
}

TEST_F(XksServiceTest, WorkThatCannotFinishByTheDeadlineIsRefusedAtOnce) {
  hsm::Fleet::Member& member = fleet_->member(0);
  member.record_call(1s);  // the HSM has been taking a second per call
  // Both executor threads busy and two calls queued: a new one would wait two rounds.
  member.in_flight = 4;
  auto shed =
      call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body(), kTenantA, "POST", 500ms);
  EXPECT_EQ(shed.status, 503);
  EXPECT_EQ(error_name_of(shed), "DependencyTimeoutException");
  // Refused at admission, not at the deadline, and the HSM never called.
  std::string text = registry_.serialize();
  EXPECT_NE(text.find(R"(xks_requests_shed_total{hsm="test-hsm"} 1)"), std::string::npos);
  EXPECT_NE(
      text.find(
          R"(xks_hsm_operation_duration_seconds_count{hsm="test-hsm",operation="GetKeyMetadata"} 0)"),
      std::string::npos)
      << text;
  // With a thread free, the average alone refuses nothing.
  member.in_flight = 0;
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/metadata", metadata_body(), kTenantA, "POST", 500ms)
                .status,
            200);
}

TEST_F(XksServiceTest, NoSessionBeforeTheDeadlineIsDependencyTimeout) {
  auto first = backend().pool().acquire(hsm::SessionPool::Clock::now() + 1s);
  auto second = backend().pool().acquire(hsm::SessionPool::Clock::now() + 1s);
  ASSERT_TRUE(first && second);
  auto response =
      call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA"), kTenantA, "POST", 30ms);
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(error_name_of(response), "DependencyTimeoutException");
}

TEST_F(XksServiceTest, MetricsCountEachOutcome) {
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA")).status, 200);
  EXPECT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA")).status, 200);
  call("/tenant-a/kms/xks/v1/keys/decrypt_only_key/encrypt", encrypt_body("AAAA"));
  call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA"), kRestricted);
  call("/tenant-a/nowhere", "{}");
  std::string text = registry_.serialize();
  auto has = [&](const std::string& line) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
  };
  has(R"(xks_requests_total{keystore="/tenant-a",operation="Encrypt",result="ok",error=""} 2)");
  has(R"(xks_requests_total{keystore="/tenant-a",operation="Encrypt",result="error",error="InvalidKeyUsageException"} 1)");
  has(R"(xks_requests_total{keystore="/tenant-a",operation="Encrypt",result="error",error="AuthenticationFailedException"} 1)");
  has(R"(xks_requests_total{keystore="",operation="",result="error",error="InvalidUriPathException"} 1)");
  has(R"(xks_sigv4_failures_total{reason="unknown_access_key_id"} 1)");
  has(R"(xks_request_duration_seconds_count{operation="Encrypt"} 4)");
  has(R"(xks_hsm_operation_duration_seconds_count{hsm="test-hsm",operation="Encrypt"} 3)");
}

TEST_F(XksServiceTest, AnswersAtTheDeadlineAndNeverStartsHsmWorkThatIsTooLate) {
  // Both executor threads are held: the Encrypt's HSM work waits in the queue past its deadline.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(backend().executor().submit([released] { released.wait(); }));
  HttpResponse answer =
      call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA"), kTenantA, "POST", 100ms);
  release.set_value();
  EXPECT_EQ(answer.status, 503);
  EXPECT_EQ(error_name_of(answer), "DependencyTimeoutException");
  drain_executor();  // runs what was queued: the late work finds its deadline passed
  std::string text = registry_.serialize();
  auto has = [&text](const std::string& line) {
    EXPECT_NE(text.find("\n" + line + "\n"), std::string::npos) << line;
  };
  has(R"(xks_requests_total{keystore="/tenant-a",operation="Encrypt",result="error",error="DependencyTimeoutException"} 1)");
  // The HSM was never called for it, so nothing came late either.
  has(R"(xks_hsm_operation_duration_seconds_count{hsm="test-hsm",operation="Encrypt"} 0)");
  has(R"(xks_hsm_late_results_total{operation="Encrypt"} 0)");
}

TEST_F(XksServiceTest, EveryRequestIsAnsweredWhenItsDeadlinePassesBeforeItsHsmTurn) {
  // The HSM work finds its deadline passed and must answer itself: the watch holds the request
  // only weakly and, busy expiring the others, may come too late to find it.
  constexpr int kRequests = 400;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(backend().executor().submit([released] { released.wait(); }));
  auto deadline = XksService::Clock::now() + 100ms;
  std::vector<std::future<HttpResponse>> answers;
  std::vector<std::shared_ptr<std::promise<HttpResponse>>> promises;
  for (int i = 0; i < kRequests; ++i) {
    auto promise = std::make_shared<std::promise<HttpResponse>>();
    answers.push_back(promise->get_future());
    promises.push_back(promise);
    HttpRequest request = signed_request("/tenant-a/kms/xks/v1/keys/foo/encrypt",
                                         encrypt_body("AAAA"), kTenantA, "POST");
    service_->handle(std::move(request), XksService::Clock::now(), deadline,
                     [promise](HttpResponse response) { promise->set_value(std::move(response)); });
  }
  // The HSM threads come free as the deadlines pass, racing the watch.
  std::this_thread::sleep_until(deadline);
  release.set_value();
  for (auto& answer : answers) {
    ASSERT_EQ(answer.wait_for(10s), std::future_status::ready);
    HttpResponse response = answer.get();
    EXPECT_EQ(response.status, 503);
    EXPECT_EQ(error_name_of(response), "DependencyTimeoutException");
  }
}

TEST_F(XksServiceTest, AnOpenCircuitFailsHsmRequestsAtOnceAndReportsTheHsmUnavailable) {
  // Two requests in a row find the HSM not answering in time: the circuit opens.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(backend().executor().submit([released] { released.wait(); }));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(
        call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA"), kTenantA, "POST", 50ms)
            .status,
        503);
  }
  release.set_value();
  ASSERT_EQ(backend().circuit().state(), hsm::CircuitState::kOpen);
  // Open: the HSM is not asked; the answer comes at once, whatever the deadline.
  HttpResponse refused = call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA"),
                              kTenantA, "POST", std::chrono::hours(1));
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(error_name_of(refused), "DependencyTimeoutException");
  auto health =
      json::parse(call("/tenant-a/kms/xks/v1/health", R"({"requestMetadata":{"kmsRequestId":"1",)"
                                                      R"("kmsOperation":"KmsHealthCheck"}})")
                      .body);
  EXPECT_EQ(health.at("ekmFleetDetails").at(0).at("healthStatus"), "UNAVAILABLE");
  EXPECT_NE(registry_.serialize().find("\nxks_hsm_circuit_rejections_total 1\n"),
            std::string::npos);
}

TEST_F(XksServiceTest, WithOnFullRejectNothingIsServedUnaudited) {
  // The audit writer blocks opening a FIFO nobody reads: its one-place queue stays full.
  std::string fifo = (token_.dir() / "audit.fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  AuditConfig config;
  config.path = fifo;
  config.on_full = AuditConfig::OnFull::kReject;
  config.queue_size = 1;
  std::unique_ptr<AuditLog> strict = *AuditLog::open(config, registry_, "test");
  service_ =
      std::make_unique<XksService>(config_.keystores, *fleet_, ProxyIdentity{}, nullptr, &*strict);
  // The first request takes the one place; its answer waits until its record is written.
  std::promise<HttpResponse> first;
  auto now = XksService::Clock::now();
  service_->handle(signed_request("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA"),
                                  kTenantA, "POST"),
                   now, now + 2000ms,
                   [&first](HttpResponse response) { first.set_value(std::move(response)); });
  auto answered = first.get_future();
  EXPECT_EQ(answered.wait_for(200ms), std::future_status::timeout);
  auto refused = call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body("AAAA"));
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(error_name_of(refused), "ThrottlingException");
  std::vector<std::string> read;
  std::thread reader([&] {
    std::ifstream in(fifo);
    for (std::string line; std::getline(in, line);)
      read.push_back(line);
  });
  EXPECT_EQ(answered.get().status, 200);
  service_.reset();
  strict.reset();
  reader.join();
  ASSERT_EQ(read.size(), 3u);  // start, the Encrypt, stop
  EXPECT_NE(read[1].find("\"operation\":\"Encrypt\""), std::string::npos);
}

TEST_F(XksServiceTest, EveryRequestIsAuditedInAVerifiableChainWithoutSecrets) {
  const std::string plaintext = "c2VjcmV0LXBsYWludGV4dC0xMjM0NQ==";  // "secret-plaintext-12345"
  ASSERT_EQ(call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body(plaintext)).status, 200);
  call("/tenant-a/kms/xks/v1/keys/decrypt_only_key/encrypt", encrypt_body(plaintext));
  call("/tenant-a/kms/xks/v1/keys/foo/encrypt", encrypt_body(plaintext), kRestricted);
  audit_.reset();  // writes what is queued
  std::ifstream file(audit_path_);
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);)
    lines.push_back(line);
  ASSERT_EQ(lines.size(), 5u);  // start, three records, stop
  lines.erase(lines.begin());
  json::object first = json::parse(lines[0]).as_object();
  EXPECT_EQ(first.at("kmsRequestId").as_string(), "4112f4d6-db54-4af4-ae30-c55a22a8dfae");
  EXPECT_EQ(first.at("operation").as_string(), "Encrypt");
  EXPECT_EQ(first.at("externalKeyId").as_string(), "foo");
  EXPECT_EQ(first.at("outcome").as_string(), "ok");
  EXPECT_EQ(first.at("status").as_int64(), 200);
  EXPECT_EQ(first.at("clientSubject").as_string(), "CN=test-client");
  EXPECT_EQ(first.at("client").as_string(), "192.0.2.7:4433");
  EXPECT_EQ(json::parse(lines[1]).at("errorName").as_string(), "InvalidKeyUsageException");
  EXPECT_EQ(json::parse(lines[2]).at("errorName").as_string(), "AuthenticationFailedException");
  AuditVerification verified = verify_audit_files({audit_path_}, nullptr, {false, true});
  EXPECT_EQ(verified.first_bad_line, 0u) << verified.reason;
  EXPECT_EQ(verified.lines, 5u);
  std::string all = lines[0] + lines[1] + lines[2];
  for (const std::string& secret : {plaintext, std::string("secret-plaintext-12345"),
                                    kTenantA.secret_access_key, token_.user_pin()}) {
    EXPECT_EQ(all.find(secret), std::string::npos) << secret;
  }
}

}  // namespace
}  // namespace xks::proxy
