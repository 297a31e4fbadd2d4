// What one client may make the transport hold, for HTTP/1.1 and HTTP/2 alike (server.* in the
// TOML; defaults in the README). Every byte a peer sends is checked against these before it is
// stored; past a limit the request or connection is refused with the protocol's own error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xks::proxy {

struct HttpLimits {
  // HTTP/1.1: the request line and header block; a chunk-size line with its extensions; the
  // trailer block. HTTP/2: a request's header list after HPACK decoding, counted as RFC 9113
  // §6.5.2 does (name + value + 32 per field) and advertised as SETTINGS_MAX_HEADER_LIST_SIZE.
  std::size_t max_header_bytes = 16 * 1024;
  // A request body, with or without chunked coding.
  std::size_t max_body_bytes = 64 * 1024;
  // HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS.
  std::uint32_t http2_max_concurrent_streams = 128;
  // HTTP/2: request header lists and bodies one connection may hold at once. A stream is
  // admitted with its whole body reserved (content-length, else max_body_bytes) or refused
  // with REFUSED_STREAM; the connection window is twice this, reopened as bytes are released.
  std::size_t http2_connection_buffer_bytes = 256 * 1024;
  // HTTP/2: streams a peer may reset per second on one connection (RST_STREAM it sends; the
  // "rapid reset" attack opens and resets streams without end). Past it: GOAWAY
  // ENHANCE_YOUR_CALM.
  std::uint32_t http2_max_resets_per_second = 100;

  bool operator==(const HttpLimits&) const = default;
};

enum class HttpProtocol : std::uint8_t { kHttp1, kHttp2 };

// Why the transport refused a request or a connection; a label of
// xks_http_refusals_total{protocol,reason}.
enum class HttpRefusal : std::uint8_t {
  kMalformed,              // not valid HTTP/1.1, or an HTTP/2 protocol error (GOAWAY)
  kHeaderBytes,            // over max_header_bytes (the header, or the HTTP/2 header list)
  kBodyBytes,              // over max_body_bytes
  kFramingBytes,           // HTTP/1.1 chunk-size line or trailer block over max_header_bytes
  kConnectionBufferBytes,  // HTTP/2 stream refused: the connection holds its budget
  kStreamsInFlight,        // HTTP/2 stream refused: max concurrent requests at the handler
  kRequestTimeout,         // a request's header or body not in within header_timeout
  kResetFlood,             // HTTP/2: the peer reset streams faster than allowed (GOAWAY)
};
inline constexpr std::size_t kHttpRefusalCount = 8;

std::string_view refusal_name(HttpRefusal refusal);

}  // namespace xks::proxy
