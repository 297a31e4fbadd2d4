// The XKS layer's metrics, registered at start-up with every label set the request path needs
// resolved in advance (see ops/metrics.h; a key store's when its configuration is loaded):
// requests by key store, operation and errorName, request and HSM latency, SigV4 refusals by
// reason, authorization refusals by rule, throttling, HSM errors by PKCS#11 code, the age of
// each SigV4 credential and each key store's kill switch.
#pragma once

#include <array>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "xks/proxy/config/config.h"
#include "xks/proxy/ops/metrics.h"
#include "xks/proxy/xks/outcome.h"
#include "xks/sigv4/failure.h"
#include "xks/wire/error.h"
#include "xks/wire/operation.h"

namespace xks::proxy {

class XksMetrics {
 public:
  static constexpr std::size_t kResults = wire::kXksErrorCount + 1;  // 0: ok, 1 + XksError

  // One key store's series, resolved whenever its configuration is (re)loaded.
  struct KeyStoreSeries {
    // [operation][result]
    std::array<std::array<metrics::Counter*, kResults>, wire::kOperationCount> requests{};
    std::vector<metrics::Counter*> denied_by_rule;  // xks_authz_denied_total, per rule
    metrics::Counter* denied_without_rule = nullptr;
    metrics::Counter* denied_blocked = nullptr;
    metrics::Counter* throttled_keystore = nullptr;  // xks_throttled_total{scope="keystore"}
    metrics::Counter* throttled_key = nullptr;       // xks_throttled_total{scope="key"}
  };

  // `hsms` names the fleet's members (the HSM-side series' label), in XksOutcome::member order.
  XksMetrics(metrics::Registry& registry, std::vector<std::string> hsms);

  KeyStoreSeries series(const KeyStoreConfig& keystore);
  // The key stores now configured: each credential's age and each key store's kill switch
  // (xks_keystore_blocked), dropping the series of what is gone.
  void set_key_stores(const std::vector<KeyStoreConfig>& keystores);

  // One answered request; `seconds` from the request fully read to its answer ready.
  void record(const XksOutcome& outcome, double seconds);
  // An HSM result that came after the deadline answer was sent, and was discarded; its HSM
  // time still counts in the HSM latency histogram.
  void record_late_result(wire::Operation operation, std::size_t member, double hsm_seconds);
  // A request turned away because no fleet member's circuit was closed.
  void record_circuit_rejection() { circuit_rejections_->inc(); }
  // A request refused at admission: its HSM work could not have finished by its deadline.
  void record_shed(std::size_t member) { shed_[member]->inc(); }

 private:
  metrics::Registry& registry_;
  std::vector<std::string> hsms_;
  metrics::Family<metrics::Counter>* requests_family_ = nullptr;
  metrics::Family<metrics::Counter>* denied_family_ = nullptr;
  metrics::Family<metrics::Counter>* throttled_family_ = nullptr;
  std::array<metrics::Counter*, kResults> unrouted_{};
  std::array<metrics::Histogram*, wire::kOperationCount> request_seconds_{};
  // [member][operation]
  std::vector<std::array<metrics::Histogram*, wire::kOperationCount>> hsm_seconds_;
  std::array<metrics::Counter*, sigv4::kFailureCount> sigv4_failures_{};
  metrics::Family<metrics::Counter>* hsm_errors_ = nullptr;  // by CKR name: resolved on errors
  std::array<metrics::Counter*, wire::kOperationCount> late_results_{};
  metrics::Counter* circuit_rejections_ = nullptr;
  std::vector<metrics::Counter*> shed_;  // per member

  // What set_key_stores() last set, refreshed on each scrape (credential ages) under mutex_.
  struct CredentialAge {
    std::vector<std::string> labels;  // keystore, access_key_id
    std::chrono::sys_seconds created;
  };
  std::mutex mutex_;
  metrics::Family<metrics::Gauge>* credential_age_ = nullptr;
  metrics::Family<metrics::Gauge>* blocked_ = nullptr;
  metrics::Family<metrics::Gauge>* blocked_since_ = nullptr;
  std::vector<CredentialAge> credential_ages_;
  std::vector<std::string> blocked_keystores_;  // label values set in blocked_
};

}  // namespace xks::proxy
