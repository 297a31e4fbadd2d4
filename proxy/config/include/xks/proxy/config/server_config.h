// The transport's options: listeners, request limits and timeouts ([server]) and TLS ([tls]).
// Plain values, parsed by load_config (config.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "xks/proxy/config/http_limits.h"

namespace xks::proxy {

struct ListenAddress {
  std::string host;  // IPv4 or IPv6 literal
  std::uint16_t port = 0;

  bool operator==(const ListenAddress&) const = default;
};

struct ServerConfig {
  ListenAddress listen{"0.0.0.0", 8443};
  ListenAddress admin_listen{"127.0.0.1", 9090};
  unsigned io_threads = 0;  // 0: one per core
  std::chrono::milliseconds request_deadline{200};
  HttpLimits limits;
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds idle_timeout{60000};
  // Connection slots (see transport's ConnectionTable for how they are shared out): all
  // connections of the XKS listener, those from one client address, those still in their TLS
  // handshake, and the admin listener's.
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_client = 1000;
  std::size_t max_handshakes_in_flight = 128;
  std::size_t admin_max_connections = 64;
  int fleet_size = 1;  // xksProxyFleetSize in GetHealthStatus
  // Reload when the configuration, TLS or SigV4 secret files change, as on SIGHUP.
  bool reload_on_change = false;

  bool operator==(const ServerConfig&) const = default;
};

struct TlsConfig {
  std::string certificate_chain;  // PEM file
  std::string private_key;        // PEM file
  std::string client_ca;          // PEM file; set = mTLS required
  // Required with client_ca: allowed DNS SANs of client certificates (the CN only for a
  // certificate without DNS SANs).
  std::vector<std::string> client_names;
};

}  // namespace xks::proxy
