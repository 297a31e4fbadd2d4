// Registering and updating the proxy's metrics.
#include "xks/proxy/app/proxy_metrics.h"

#include "xks/hsm/hsm_executor.h"
#include "xks/hsm/hsm_health.h"
#include "xks/hsm/session_pool.h"
#include "xks/proxy/xks/outcome.h"

namespace xks::proxy {

namespace {

// From well inside one HSM call to past KMS's 250 ms budget.
const std::vector<double> kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1};

static_assert(static_cast<std::size_t>(sigv4::Failure::kSignatureMismatch) + 1 ==
              kSigV4FailureCount);

std::string error_label(std::size_t outcome) {
  return outcome == 0 ? "" : std::string(error_name(static_cast<XksError>(outcome - 1)));
}

std::size_t outcome_index(const XksOutcome& outcome) {
  return outcome.error ? static_cast<std::size_t>(*outcome.error) + 1 : 0;
}

}  // namespace

ProxyMetrics::ProxyMetrics(const Config& config, std::string hsm_id, std::string version)
    : hsm_id_(std::move(hsm_id)) {
  auto& requests = registry_.counter("xks_requests_total",
                                     "XKS requests by key store, operation, result and errorName.",
                                     {"keystore", "operation", "result", "error"});
  requests_.resize(config.keystores.size());
  for (std::size_t outcome = 0; outcome <= wire::kXksErrorCount; ++outcome) {
    std::string result = outcome == 0 ? "ok" : "error";
    for (std::size_t store = 0; store < config.keystores.size(); ++store) {
      for (wire::Operation operation : wire::kOperations) {
        requests_[store][static_cast<std::size_t>(operation)][outcome] = &requests.labels(
            {config.keystores[store].prefix, std::string(operation_name(operation)), result,
             error_label(outcome)});
      }
    }
    // Requests that never reached a key store (unknown path): no store, no operation.
    unrouted_[outcome] = &requests.labels({"", "", result, error_label(outcome)});
  }
  auto& latency =
      registry_.histogram("xks_request_duration_seconds",
                          "Time from a request fully read to its answer ready, by XKS operation.",
                          {"operation"}, kLatencyBuckets);
  auto& hsm_latency =
      registry_.histogram("xks_hsm_operation_duration_seconds",
                          "Time at the HSM layer (session wait included) by HSM and XKS operation.",
                          {"hsm", "operation"}, kLatencyBuckets);
  for (wire::Operation operation : wire::kOperations) {
    std::string name(operation_name(operation));
    request_seconds_[static_cast<std::size_t>(operation)] = &latency.labels({name});
    hsm_seconds_[static_cast<std::size_t>(operation)] = &hsm_latency.labels({hsm_id_, name});
  }
  auto& sigv4 = registry_.counter("xks_sigv4_failures_total",
                                  "Requests refused by SigV4 verification, by reason.", {"reason"});
  for (std::size_t i = 0; i < kSigV4FailureCount; ++i) {
    sigv4_failures_[i] =
        &sigv4.labels({std::string(sigv4::failure_name(static_cast<sigv4::Failure>(i)))});
  }
  hsm_errors_ = &registry_.counter("xks_hsm_errors_total", "HSM call failures by PKCS#11 code.",
                                   {"hsm", "ckr"});
  health_transitions_ =
      &registry_.counter("xks_hsm_health_transitions_total",
                         "Changes of an HSM's health state, by new state.", {"hsm", "state"});
  certificate_expiry_ = &registry_
                             .gauge("xks_tls_certificate_expiry_timestamp_seconds",
                                    "notAfter of the serving certificate (Unix time).")
                             .labels({});
  auto& credential_age =
      registry_.gauge("xks_credential_age_seconds",
                      "Age of each SigV4 credential (from its configured created time).",
                      {"keystore", "access_key_id"});
  for (const KeyStoreConfig& store : config.keystores) {
    for (const CredentialConfig& credential : store.credentials) {
      if (!credential.created)
        continue;
      metrics::Gauge& age =
          credential_age.labels({store.prefix, credential.credential.access_key_id});
      auto created = *credential.created;
      registry_.on_scrape([&age, created] {
        age.set(std::chrono::duration<double>(std::chrono::system_clock::now() - created).count());
      });
    }
  }
  audit_dropped_ = &registry_
                        .counter("xks_audit_records_dropped_total",
                                 "Requests served without an audit record (queue full).")
                        .labels({});
  registry_.gauge("xks_build_info", "Build of this xks-proxy.", {"version"})
      .labels({std::move(version)})
      .set(1);
}

void ProxyMetrics::watch(hsm::SessionPool& pool, hsm::HsmExecutor& executor,
                         hsm::HsmHealth& health) {
  auto& sessions = registry_.gauge("xks_hsm_sessions", "HSM sessions by state.", {"hsm", "state"});
  metrics::Gauge& idle = sessions.labels({hsm_id_, "idle"});
  metrics::Gauge& busy = sessions.labels({hsm_id_, "busy"});
  metrics::Gauge& missing = sessions.labels({hsm_id_, "reconnecting"});
  metrics::Gauge& queue =
      registry_.gauge("xks_hsm_queue_depth", "Requests waiting for an HSM executor thread.")
          .labels({});
  auto& health_family =
      registry_.gauge("xks_hsm_health", "1 for the HSM's current health state, 0 for the others.",
                      {"hsm", "state"});
  std::array<metrics::Gauge*, 3> states = {&health_family.labels({hsm_id_, "ACTIVE"}),
                                           &health_family.labels({hsm_id_, "DEGRADED"}),
                                           &health_family.labels({hsm_id_, "UNAVAILABLE"})};
  registry_.on_scrape([&, states] {
    hsm::SessionPool::Counts counts = pool.counts();
    idle.set(static_cast<double>(counts.idle));
    busy.set(static_cast<double>(counts.busy));
    missing.set(static_cast<double>(counts.missing));
    queue.set(static_cast<double>(executor.queued()));
    auto current = static_cast<std::size_t>(health.last().state);
    for (std::size_t i = 0; i < states.size(); ++i)
      states[i]->set(i == current ? 1 : 0);
  });
}

void ProxyMetrics::set_certificate_expiry(double seconds_since_epoch) {
  certificate_expiry_->set(seconds_since_epoch);
}

void ProxyMetrics::record(const XksOutcome& outcome, double seconds) {
  std::size_t result = outcome_index(outcome);
  if (outcome.keystore && outcome.operation) {
    requests_[*outcome.keystore][static_cast<std::size_t>(*outcome.operation)][result]->inc();
    request_seconds_[static_cast<std::size_t>(*outcome.operation)]->observe(seconds);
    if (outcome.hsm_seconds >= 0) {
      hsm_seconds_[static_cast<std::size_t>(*outcome.operation)]->observe(outcome.hsm_seconds);
    }
  } else {
    unrouted_[result]->inc();
  }
  if (outcome.auth_failure)
    sigv4_failures_[static_cast<std::size_t>(*outcome.auth_failure)]->inc();
  if (outcome.hsm_rv != CKR_OK)
    hsm_errors_->labels({hsm_id_, hsm::ckr_name(outcome.hsm_rv)}).inc();
}

void ProxyMetrics::record_health_transition(std::string_view to) {
  health_transitions_->labels({hsm_id_, std::string(to)}).inc();
}

}  // namespace xks::proxy
