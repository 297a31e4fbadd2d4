// The transport's own metrics, registered at start-up in the shared registry: TLS handshakes,
// open connections by protocol, requests or connections refused at a limit, connections evicted
// to make room, failed accepts, and readiness as /readyz answers it.
#pragma once

#include <array>
#include <atomic>

#include "connection_table.h"
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

  enum class Listener : std::uint8_t { kXks, kAdmin };
  void record_connection_refused(Listener listener, ConnectionTable::Limit limit) {
    connections_refused_[index(listener)][index(limit)]->inc();
  }
  void record_eviction(Listener listener, ConnectionTable::Limit limit) {
    evictions_[index(listener)][index(limit)]->inc();
  }
  void record_accept_error(Listener listener) { accept_errors_[index(listener)]->inc(); }
  // What GET /readyz answers now (set by the admin session before each scrape and answer).
  void record_ready(bool ready) { ready_->set(ready ? 1 : 0); }

  // Counted by the sessions themselves; mirrored into the gauges at each scrape.
  std::atomic<long> http1_connections{0};
  std::atomic<long> http2_connections{0};

 private:
  metrics::Counter* handshakes_ok_ = nullptr;
  metrics::Counter* handshakes_failed_ = nullptr;
  metrics::Gauge* ready_ = nullptr;
  template <typename Enum>
  static std::size_t index(Enum value) {
    return static_cast<std::size_t>(value);
  }

  std::array<std::array<metrics::Counter*, kHttpRefusalCount>, 2> refusals_{};
  using PerLimit = std::array<metrics::Counter*, ConnectionTable::kLimitCount>;
  std::array<PerLimit, 2> connections_refused_{};
  std::array<PerLimit, 2> evictions_{};
  std::array<metrics::Counter*, 2> accept_errors_{};
};

}  // namespace xks::proxy
