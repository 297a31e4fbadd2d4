// The admin listener's connections: plain HTTP/1.1 for load balancers and Kubernetes.
//   GET /livez  -> 200 while the process serves
//   GET /readyz -> 200 once the self-test passed and while the HSM is not UNAVAILABLE
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "listener_state.h"

namespace xks::proxy {

void start_admin_session(boost::asio::ip::tcp::socket socket, ListenerState& context);

}  // namespace xks::proxy
