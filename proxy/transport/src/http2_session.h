// One TLS connection speaking HTTP/2 (ALPN h2): an nghttp2 server session fed bytes from the
// socket and drained into it, many requests multiplexed as streams.
#pragma once

#include <memory>

#include "listener_state.h"
#include "tls_socket.h"

namespace xks::proxy {

// Takes over a connection whose TLS handshake negotiated h2.
void start_http2_session(std::unique_ptr<TlsSocket> stream, ConnectionTable::Admission admission,
                         ListenerState& context);

}  // namespace xks::proxy
