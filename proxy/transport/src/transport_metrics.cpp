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
  ready_ = &registry
                .gauge("xks_ready",
                       "1 while GET /readyz answers 200 (some HSM can serve and the proxy is not "
                       "draining), else 0.")
                .labels({});
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
  auto& refused = registry.counter(
      "xks_connections_refused_total",
      "New connections closed at once because a connection limit was reached with nothing "
      "evictable, by listener and limit.",
      {"listener", "limit"});
  auto& evicted = registry.counter(
      "xks_connections_evicted_total",
      "Connections closed to make room for a new one (a handshake in progress, or a connection "
      "with no authenticated request yet), by listener and limit.",
      {"listener", "limit"});
  auto& accept_errors = registry.counter(
      "xks_accept_errors_total",
      "Failed accepts (e.g. out of file descriptors), each followed by a pause, by listener.",
      {"listener"});
  constexpr std::array<const char*, 2> kListeners{"xks", "admin"};
  constexpr std::array<const char*, ConnectionTable::kLimitCount> kLimits{
      "max_connections", "max_connections_per_client", "max_handshakes_in_flight"};
  for (std::size_t listener = 0; listener < kListeners.size(); ++listener) {
    for (std::size_t limit = 0; limit < kLimits.size(); ++limit) {
      connections_refused_[listener][limit] =
          &refused.labels({kListeners[listener], kLimits[limit]});
      evictions_[listener][limit] = &evicted.labels({kListeners[listener], kLimits[limit]});
    }
    accept_errors_[listener] = &accept_errors.labels({kListeners[listener]});
  }
}

}  // namespace xks::proxy
