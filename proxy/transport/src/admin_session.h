// The admin listener's connections: plain HTTP/1.1 for Prometheus, load balancers and Kubernetes.
//   GET /metrics -> the Application's scrape (Prometheus text format)
//   GET /livez   -> 200 while the process serves
//   GET /readyz  -> 200 while not draining and the Application says ready
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "listener_state.h"

namespace xks::proxy {

void start_admin_session(boost::asio::ip::tcp::socket socket, ListenerState& context);

}  // namespace xks::proxy
