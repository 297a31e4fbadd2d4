// One TLS connection speaking HTTP/2 (ALPN h2): an nghttp2 server session fed bytes from the
// socket and drained into it, many XKS requests multiplexed as streams.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "session_context.h"

namespace xks::proxy {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// Takes over a stream whose TLS handshake negotiated h2.
void start_http2_session(TlsStream stream, SessionContext& context);

}  // namespace xks::proxy
