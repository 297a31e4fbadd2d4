// Names of the transport's refusals, as metric labels.
#include "xks/proxy/config/http_limits.h"

namespace xks::proxy {

std::string_view refusal_name(HttpRefusal refusal) {
  switch (refusal) {
    case HttpRefusal::kMalformed:
      return "malformed";
    case HttpRefusal::kHeaderBytes:
      return "header_bytes";
    case HttpRefusal::kBodyBytes:
      return "body_bytes";
    case HttpRefusal::kFramingBytes:
      return "framing_bytes";
    case HttpRefusal::kConnectionBufferBytes:
      return "connection_buffer_bytes";
    case HttpRefusal::kStreamsInFlight:
      return "streams_in_flight";
    case HttpRefusal::kRequestTimeout:
      return "request_timeout";
    case HttpRefusal::kResetFlood:
      return "reset_flood";
  }
  return "malformed";
}

}  // namespace xks::proxy
