// Registering the transport's metrics.
#include "transport_metrics.h"

#include <string>

namespace xks::proxy {

TransportMetrics::TransportMetrics(metrics::Registry& registry) {
  auto& handshakes =
      registry.counter("xks_tls_handshakes_total", "TLS handshakes by result.", {"result"});
  handshakes_ok_ = &handshakes.labels({"ok"});
  handshakes_failed_ = &handshakes.labels({"failed"});
  auto& connections = registry.gauge("xks_open_connections",
                                     "Open TLS connections by HTTP protocol.", {"protocol"});
  metrics::Gauge& http1 = connections.labels({"http1"});
  metrics::Gauge& http2 = connections.labels({"http2"});
  registry.on_scrape([this, &http1, &http2] {
    http1.set(static_cast<double>(http1_connections.load()));
    http2.set(static_cast<double>(http2_connections.load()));
  });
  auto& refusals = registry.counter(
      "xks_http_refusals_total",
      "Requests and connections the transport refused at a limit or for a protocol error, by "
      "protocol and reason.",
      {"protocol", "reason"});
  for (std::size_t reason = 0; reason < kHttpRefusalCount; ++reason) {
    std::string name(refusal_name(static_cast<HttpRefusal>(reason)));
    refusals_[0][reason] = &refusals.labels({"http1", name});
    refusals_[1][reason] = &refusals.labels({"http2", name});
  }
}

}  // namespace xks::proxy
