// What the transport serves, supplied by the application above it: the transport parses,
// limits and writes HTTP, and knows nothing of XKS, its errors or the HSM.
#pragma once

#include <functional>
#include <string>

#include "xks/proxy/config/http_limits.h"
#include "xks/proxy/transport/http_message.h"

namespace xks::proxy {

// Takes the answer to one request; callable once, from any thread (the transport moves the
// answer back to the connection's own thread).
using Respond = std::function<void(HttpResponse response)>;

struct Application {
  // Serves one complete request. Must call `respond` exactly once, now or later.
  std::function<void(HttpRequest request, Respond respond)> handle;
  // The answer to a request the transport refused before handing it on: malformed (400),
  // header too large, body too large, chunk line or trailers too large (all 400
  // ValidationException in the XKS service: the spec's error table has no others for these).
  // `client_address` is the peer's "address:port".
  std::function<HttpResponse(HttpRefusal reason, const std::string& client_address)> render_refusal;
  // The admin listener: the body of GET /metrics (Prometheus text), and whether GET /readyz
  // answers ready.
  std::function<std::string()> scrape;
  std::function<bool()> ready;
};

}  // namespace xks::proxy
