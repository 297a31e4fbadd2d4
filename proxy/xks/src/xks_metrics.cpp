// Registering and updating the XKS layer's metrics.
#include "xks/proxy/xks/xks_metrics.h"

#include <chrono>

#include "xks/proxy/xks/authorization.h"
#include "xks/proxy/xks/xks_service.h"

namespace xks::proxy {

namespace {

// From well inside one HSM call to past KMS's 250 ms budget.
const std::vector<double> kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1};

std::string error_label(std::size_t result) {
  return result == 0 ? "" : std::string(error_name(static_cast<XksError>(result - 1)));
}

std::size_t result_index(const XksOutcome& outcome) {
  return outcome.error ? static_cast<std::size_t>(*outcome.error) + 1 : 0;
}

}  // namespace

XksMetrics::XksMetrics(metrics::Registry& registry, std::vector<std::string> hsms)
    : registry_(registry), hsms_(std::move(hsms)), hsm_seconds_(hsms_.size()) {
  requests_family_ = &registry.counter(
      "xks_requests_total", "XKS requests by key store, operation, result and errorName.",
      {"keystore", "operation", "result", "error"});
  for (std::size_t result = 0; result < kResults; ++result) {
    // Requests that never reached a key store (unknown path): no store, no operation.
    unrouted_[result] =
        &requests_family_->labels({"", "", result == 0 ? "ok" : "error", error_label(result)});
  }
  denied_family_ = &registry.counter(
      "xks_authz_denied_total",
      "Requests refused by a key store's authorization, by key store and the rule that decided "
      "((no allow rule) when none matched, (blocked) for the kill switch).",
      {"keystore", "rule"});
  throttled_family_ = &registry.counter(
      "xks_throttled_total",
      "Requests refused with ThrottlingException by a quota, by key store and bucket (keystore "
      "or key).",
      {"keystore", "scope"});
  auto& latency =
      registry.histogram("xks_request_duration_seconds",
                         "Time from a request fully read to its answer ready, by XKS operation.",
                         {"operation"}, kLatencyBuckets);
  auto& hsm_latency =
      registry.histogram("xks_hsm_operation_duration_seconds",
                         "Time at the HSM layer (session wait included) by HSM and XKS operation.",
                         {"hsm", "operation"}, kLatencyBuckets);
  for (wire::Operation operation : wire::kOperations) {
    std::string name(operation_name(operation));
    request_seconds_[static_cast<std::size_t>(operation)] = &latency.labels({name});
    for (std::size_t member = 0; member < hsms_.size(); ++member) {
      hsm_seconds_[member][static_cast<std::size_t>(operation)] =
          &hsm_latency.labels({hsms_[member], name});
    }
  }
  auto& sigv4 = registry.counter("xks_sigv4_failures_total",
                                 "Requests refused by SigV4 verification, by reason.", {"reason"});
  for (std::size_t i = 0; i < sigv4::kFailureCount; ++i) {
    sigv4_failures_[i] =
        &sigv4.labels({std::string(sigv4::failure_name(static_cast<sigv4::Failure>(i)))});
  }
  auto& late = registry.counter(
      "xks_hsm_late_results_total",
      "HSM results discarded because the request had been answered at its deadline, by XKS "
      "operation.",
      {"operation"});
  for (wire::Operation operation : wire::kOperations)
    late_results_[static_cast<std::size_t>(operation)] =
        &late.labels({std::string(operation_name(operation))});
  circuit_rejections_ = &registry
                             .counter("xks_hsm_circuit_rejections_total",
                                      "Requests failed at once because no HSM's circuit was "
                                      "closed.")
                             .labels({});
  hsm_errors_ = &registry.counter("xks_hsm_errors_total", "HSM call failures by PKCS#11 code.",
                                  {"hsm", "ckr"});
  auto& shed = registry.counter(
      "xks_requests_shed_total",
      "Requests answered 503 at once because the HSM's backlog could not have finished them "
      "before their deadline, by the HSM chosen.",
      {"hsm"});
  for (const std::string& member : hsms_)
    shed_.push_back(&shed.labels({member}));
  credential_age_ =
      &registry.gauge("xks_credential_age_seconds",
                      "Age of each SigV4 credential (from its configured created time).",
                      {"keystore", "access_key_id"});
  blocked_ =
      &registry.gauge("xks_keystore_blocked",
                      "1 while a key store is blocked by its kill switch, else 0.", {"keystore"});
  blocked_since_ = &registry.gauge(
      "xks_keystore_blocked_since_timestamp_seconds",
      "When a blocked key store was blocked (its blocked_at), as Unix time.", {"keystore"});
  registry.on_scrape([this] {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::system_clock::now();
    for (const CredentialAge& age : credential_ages_)
      credential_age_->labels(age.labels)
          .set(std::chrono::duration<double>(now - age.created).count());
  });
}

XksMetrics::KeyStoreSeries XksMetrics::series(const KeyStoreConfig& keystore) {
  KeyStoreSeries series;
  for (std::size_t result = 0; result < kResults; ++result) {
    for (wire::Operation operation : wire::kOperations) {
      series.requests[static_cast<std::size_t>(operation)][result] =
          &requests_family_->labels({keystore.prefix, std::string(operation_name(operation)),
                                     result == 0 ? "ok" : "error", error_label(result)});
    }
  }
  for (const AuthorizationRule& rule : keystore.rules)
    series.denied_by_rule.push_back(&denied_family_->labels({keystore.prefix, rule.id}));
  series.denied_without_rule =
      &denied_family_->labels({keystore.prefix, std::string(kNoAllowRuleLabel)});
  series.denied_blocked = &denied_family_->labels({keystore.prefix, std::string(kBlockedLabel)});
  series.throttled_keystore = &throttled_family_->labels({keystore.prefix, "keystore"});
  series.throttled_key = &throttled_family_->labels({keystore.prefix, "key"});
  return series;
}

void XksMetrics::set_key_stores(const std::vector<KeyStoreConfig>& keystores) {
  std::lock_guard lock(mutex_);
  for (const CredentialAge& age : credential_ages_)
    credential_age_->remove(age.labels);
  credential_ages_.clear();
  for (const std::string& prefix : blocked_keystores_) {
    blocked_->remove({prefix});
    blocked_since_->remove({prefix});
  }
  blocked_keystores_.clear();
  for (const KeyStoreConfig& store : keystores) {
    for (const CredentialConfig& credential : store.credentials) {
      if (credential.created)
        credential_ages_.push_back(
            {{store.prefix, credential.credential.access_key_id}, *credential.created});
    }
    blocked_keystores_.push_back(store.prefix);
    blocked_->labels({store.prefix}).set(store.block.blocked ? 1 : 0);
    if (store.block.blocked && store.block.at) {
      blocked_since_->labels({store.prefix})
          .set(static_cast<double>(store.block.at->time_since_epoch().count()));
    }
  }
}

void XksMetrics::record(const XksOutcome& outcome, double seconds) {
  std::size_t result = result_index(outcome);
  if (outcome.keystore != nullptr && outcome.operation) {
    auto operation = static_cast<std::size_t>(*outcome.operation);
    outcome.keystore->series.requests[operation][result]->inc();
    request_seconds_[operation]->observe(seconds);
    if (outcome.member && outcome.hsm_seconds >= 0)
      hsm_seconds_[*outcome.member][operation]->observe(outcome.hsm_seconds);
  } else {
    unrouted_[result]->inc();
  }
  if (outcome.auth_failure)
    sigv4_failures_[static_cast<std::size_t>(*outcome.auth_failure)]->inc();
  if (outcome.member && outcome.hsm_rv != CKR_OK)
    hsm_errors_->labels({hsms_[*outcome.member], hsm::ckr_name(outcome.hsm_rv)}).inc();
}

void XksMetrics::record_late_result(wire::Operation operation, std::size_t member,
                                    double hsm_seconds) {
  late_results_[static_cast<std::size_t>(operation)]->inc();
  hsm_seconds_[member][static_cast<std::size_t>(operation)]->observe(hsm_seconds);
}

}  // namespace xks::proxy
