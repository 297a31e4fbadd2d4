// What access control adds to a request, on the request path's own code: a key store's
// decision with 20 rules that are all evaluated (19 deny rules that do not apply, the allow
// rule that does last) and a quota admission. bench/authz-cost measures the same end to end.
#include <benchmark/benchmark.h>

#include <string>

#include "quota.h"
#include "xks/proxy/xks/authorization.h"

namespace xks::proxy {
namespace {

KeyStoreConfig twenty_rules() {
  KeyStoreConfig config;
  config.prefix = "/example";
  config.keys = {"foo", "encrypt_only_key", "decrypt_only_key", "impotent_key", "tenant-*"};
  for (int i = 1; i <= 19; ++i) {
    AuthorizationRule deny;
    deny.id = "deny-" + std::to_string(i);
    deny.deny = true;
    deny.principals = {"arn:aws:iam::*:user/nobody-" + std::to_string(i),
                       "arn:aws:iam::" + std::to_string(i) + ":*"};
    deny.via_services = {"*.service-" + std::to_string(i) + ".amazonaws.com"};
    config.rules.push_back(deny);
  }
  AuthorizationRule allow;
  allow.id = "bench";
  allow.principals = {"arn:aws:iam::*:user/bench"};
  allow.kms_operations = {"Encrypt", "Decrypt"};
  config.rules.push_back(allow);
  return config;
}

const wire::RequestMetadata kMetadata{
    .aws_principal_arn = "arn:aws:iam::123456789012:user/bench",
    .kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    .kms_operation = "Encrypt",
    .kms_request_id = "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
    .kms_via_service = "",
    .aws_source_vpc = "",
    .aws_source_vpce = ""};

void BM_DecideWithTwentyRules(benchmark::State& state) {
  KeyStorePolicy policy(twenty_rules(), {"xks-health"});
  for (auto _ : state) {
    AuthorizationDecision decision = policy.decide({wire::Operation::kEncrypt, "foo", kMetadata});
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_DecideWithTwentyRules);

void BM_DecideWithoutRules(benchmark::State& state) {
  KeyStoreConfig config = twenty_rules();
  config.rules.clear();
  KeyStorePolicy policy(config, {"xks-health"});
  for (auto _ : state) {
    AuthorizationDecision decision = policy.decide({wire::Operation::kEncrypt, "foo", kMetadata});
    benchmark::DoNotOptimize(decision);
  }
}
BENCHMARK(BM_DecideWithoutRules);

void BM_QuotaAdmit(benchmark::State& state) {
  QuotaConfig config;
  config.requests_per_second = 1e9;
  config.burst = 1e9;
  config.key_requests_per_second = 1e9;
  config.key_burst = 1e9;
  Quota quota(config, Quota::Clock::now());
  for (auto _ : state)
    benchmark::DoNotOptimize(quota.admit("foo", Quota::Clock::now()));
}
BENCHMARK(BM_QuotaAdmit);

}  // namespace
}  // namespace xks::proxy

BENCHMARK_MAIN();
