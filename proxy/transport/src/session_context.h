// What every connection of a server shares: the runtime, the TLS context, limits and counters.
#pragma once

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <cstddef>
#include <memory>

#include "xks/proxy/app/runtime.h"

namespace xks::proxy {

struct SessionContext {
  Runtime& runtime;
  boost::asio::ssl::context& tls;
  const ServerConfig& config;
  std::atomic<std::size_t> open_connections{0};
  std::atomic<std::size_t> requests_in_flight{0};
  std::atomic<bool> draining{false};
};

}  // namespace xks::proxy
