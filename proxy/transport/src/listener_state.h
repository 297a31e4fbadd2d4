// What every connection of the XKS listener shares: what it serves, the TLS context, limits
// and timeouts, the transport's metrics, the connection slots and the counters the drain
// waits on.
#pragma once

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <memory>

#include "connection_table.h"
#include "transport_metrics.h"
#include "xks/proxy/config/server_config.h"
#include "xks/proxy/transport/application.h"

namespace xks::proxy {

struct ListenerState {
  const Application& application;
  // For new handshakes; replaced on reload (a connection keeps the one it started with).
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> tls;
  const ServerConfig& config;
  TransportMetrics& metrics;
  ConnectionTable connections;        // the XKS listener's
  ConnectionTable admin_connections;  // the admin listener's
  std::atomic<std::size_t> requests_in_flight{0};
  std::atomic<bool> draining{false};
};

}  // namespace xks::proxy
