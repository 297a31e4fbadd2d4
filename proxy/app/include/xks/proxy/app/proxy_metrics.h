// The proxy's metrics, registered once at start-up with every label set the request path
// needs resolved in advance (see metrics.h). Served at GET /metrics on the admin listener.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "xks/proxy/config/config.h"
#include "xks/proxy/ops/metrics.h"
#include "xks/proxy/xks/xks_error.h"
#include "xks/sigv4/failure.h"
#include "xks/wire/operation.h"

namespace xks::hsm {
class HsmExecutor;
class HsmHealth;
class SessionPool;
}  // namespace xks::hsm

namespace xks::proxy {

struct XksOutcome;

inline constexpr std::size_t kSigV4FailureCount = 18;

class ProxyMetrics {
 public:
  ProxyMetrics(const Config& config, std::string hsm_id, std::string version);

  // Mirrors the HSM side's state at every scrape.
  void watch(hsm::SessionPool& pool, hsm::HsmExecutor& executor, hsm::HsmHealth& health);
  // notAfter of the serving certificate, as seconds since the epoch.
  void set_certificate_expiry(double seconds_since_epoch);

  void record(const XksOutcome& outcome, double seconds);
  void record_health_transition(std::string_view to);
  void record_audit_drop() { audit_dropped_->inc(); }

  std::string scrape() const { return registry_.serialize(); }
  // Where the other layers (the transport) register their own metrics.
  metrics::Registry& registry() { return registry_; }

 private:
  metrics::Registry registry_;
  std::string hsm_id_;
  // [keystore][operation][0 = success, 1 + XksError]
  std::vector<
      std::array<std::array<metrics::Counter*, wire::kXksErrorCount + 1>, wire::kOperationCount>>
      requests_;
  std::array<metrics::Counter*, wire::kXksErrorCount + 1> unrouted_{};
  std::array<metrics::Histogram*, wire::kOperationCount> request_seconds_{};
  std::array<metrics::Histogram*, wire::kOperationCount> hsm_seconds_{};
  std::array<metrics::Counter*, kSigV4FailureCount> sigv4_failures_{};
  metrics::Family<metrics::Counter>* hsm_errors_ = nullptr;  // by CKR name: resolved on errors
  metrics::Family<metrics::Counter>* health_transitions_ = nullptr;
  metrics::Gauge* certificate_expiry_ = nullptr;
  metrics::Counter* audit_dropped_ = nullptr;
};

}  // namespace xks::proxy
