// The XKS layer's metrics, registered once at start-up with every label set the request path
// needs resolved in advance (see ops/metrics.h): requests by key store, operation and errorName,
// request and HSM latency, SigV4 refusals by reason, HSM errors by PKCS#11 code, and the age of
// each SigV4 credential.
#pragma once

#include <array>
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
  // `keystores` are the configured key stores, in the order XksOutcome::keystore indexes them;
  // `hsms` names the fleet's members (the HSM-side series' label), in XksOutcome::member order.
  XksMetrics(metrics::Registry& registry, const std::vector<KeyStoreConfig>& keystores,
             std::vector<std::string> hsms);

  // One answered request; `seconds` from the request fully read to its answer ready.
  void record(const XksOutcome& outcome, double seconds);
  // An HSM result that came after the deadline answer was sent, and was discarded; its HSM
  // time still counts in the HSM latency histogram.
  void record_late_result(wire::Operation operation, std::size_t member, double hsm_seconds);
  // A request turned away because no fleet member's circuit was closed.
  void record_circuit_rejection() { circuit_rejections_->inc(); }

 private:
  static constexpr std::size_t kResults = wire::kXksErrorCount + 1;  // 0: ok, 1 + XksError

  std::vector<std::string> hsms_;
  // [keystore][operation][result]
  std::vector<std::array<std::array<metrics::Counter*, kResults>, wire::kOperationCount>> requests_;
  std::array<metrics::Counter*, kResults> unrouted_{};
  std::array<metrics::Histogram*, wire::kOperationCount> request_seconds_{};
  // [member][operation]
  std::vector<std::array<metrics::Histogram*, wire::kOperationCount>> hsm_seconds_;
  std::array<metrics::Counter*, sigv4::kFailureCount> sigv4_failures_{};
  metrics::Family<metrics::Counter>* hsm_errors_ = nullptr;  // by CKR name: resolved on errors
  std::array<metrics::Counter*, wire::kOperationCount> late_results_{};
  metrics::Counter* circuit_rejections_ = nullptr;
};

}  // namespace xks::proxy
