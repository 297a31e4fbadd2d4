// The transport's own metrics, registered at start-up in the shared registry: TLS handshakes,
// open connections by protocol, and requests or connections refused at a limit.
#pragma once

#include <array>
#include <atomic>

#include "xks/proxy/config/http_limits.h"
#include "xks/proxy/ops/metrics.h"

namespace xks::proxy {

class TransportMetrics {
 public:
  explicit TransportMetrics(metrics::Registry& registry);

  void record_handshake(bool ok) { (ok ? handshakes_ok_ : handshakes_failed_)->inc(); }
  void record_refusal(HttpProtocol protocol, HttpRefusal reason) {
    refusals_[static_cast<std::size_t>(protocol)][static_cast<std::size_t>(reason)]->inc();
  }

  // Counted by the sessions themselves; mirrored into the gauges at each scrape.
  std::atomic<long> http1_connections{0};
  std::atomic<long> http2_connections{0};

 private:
  metrics::Counter* handshakes_ok_ = nullptr;
  metrics::Counter* handshakes_failed_ = nullptr;
  std::array<std::array<metrics::Counter*, kHttpRefusalCount>, 2> refusals_{};
};

}  // namespace xks::proxy
