// Cost of one SigV4 verification of a KMS-style Encrypt request: cold (signing key derived,
// includes building the Verifier) and warm (signing key cached, the steady state).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>

#include "owned_request.h"
#include "xks/sigv4/canonical.h"
#include "xks/sigv4/signer.h"
#include "xks/sigv4/verifier.h"

namespace {

using namespace xks::sigv4;

const Credential kCredential{"AKIAZ2345ABCDEFGHIJKLMN",
                             "benchSecretbenchSecretbenchSecretbench12345"};
const std::chrono::system_clock::time_point kNow{std::chrono::seconds{1'795'000'000}};

xks::test::OwnedRequest signed_request() {
  xks::test::OwnedRequest request;
  request.path = "/tenant-a/kms/xks/v1/keys/key-1/encrypt";
  request.headers = {{"Host", "xks.example.com"}, {"X-Amz-Date", format_amz_date(kNow)}};
  request.body =
      R"({"requestMetadata":{"awsPrincipalArn":"arn:aws:iam::123456789012:user/alice",)"
      R"("kmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/1",)"
      R"("kmsOperation":"Encrypt","kmsRequestId":"4112f4d6-db54-4af4-ae30-c55a22a8dfae"},)"
      R"("plaintext":")" +
      std::string(400, 'A') + R"(","encryptionAlgorithm":"AES_GCM"})";
  Signer signer(kCredential, "us-east-1", std::string(kXksService));
  std::string authorization = signer.authorization(request.view(), format_amz_date(kNow));
  request.headers.emplace_back("Authorization", authorization);
  request.headers.emplace_back("Content-Type", "application/json");
  return request;
}

Verifier make_verifier() {
  return Verifier(
      {{"AKIAOTHEROTHEROTHER2", "otherSecretotherSecretotherSecretother12345"}, kCredential},
      {"us-east-1"}, [] { return kNow; });
}

void require_valid(const tl::expected<std::reference_wrapper<const Credential>, Failure>& r) {
  if (!r) {
    std::fprintf(stderr, "verification failed: %s\n", failure_name(r.error()).data());
    std::abort();
  }
}

void BM_VerifyWarm(benchmark::State& state) {
  auto request = signed_request();
  Request view = request.view();
  Verifier verifier = make_verifier();
  require_valid(verifier.verify(view));
  for (auto _ : state) {
    benchmark::DoNotOptimize(verifier.verify(view));
  }
}
BENCHMARK(BM_VerifyWarm);

void BM_VerifyCold(benchmark::State& state) {
  auto request = signed_request();
  Request view = request.view();
  for (auto _ : state) {
    Verifier verifier = make_verifier();
    auto result = verifier.verify(view);
    require_valid(result);
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(BM_VerifyCold);

}  // namespace

BENCHMARK_MAIN();
