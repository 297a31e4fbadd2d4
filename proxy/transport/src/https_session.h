// One TLS connection: the handshake, then HTTP/2 when ALPN chose h2, else HTTP/1.1 requests,
// kept alive across requests.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "listener_state.h"

namespace xks::proxy {

// Takes ownership of an accepted socket and serves it until the client or a timeout ends it.
void start_https_session(boost::asio::ip::tcp::socket socket, ListenerState& context);

}  // namespace xks::proxy
