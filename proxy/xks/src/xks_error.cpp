// XKS errors as HTTP answers, and the answers to the transport's refusals.
#include "xks/proxy/xks/xks_error.h"

namespace xks::proxy {

HttpResponse error_response(XksError error, std::string_view message) {
  return {http_status(error), error_body(error, message)};
}

std::pair<XksError, std::string_view> refusal_error(HttpRefusal reason) {
  switch (reason) {
    case HttpRefusal::kMalformed:
      return {XksError::kValidation, "malformed HTTP request"};
    case HttpRefusal::kHeaderBytes:
      return {XksError::kValidation, "request header too large"};
    case HttpRefusal::kBodyBytes:
      return {XksError::kValidation, "request body too large"};
    case HttpRefusal::kFramingBytes:
      return {XksError::kValidation, "chunk line or trailers too large"};
    case HttpRefusal::kConnectionBufferBytes:
    case HttpRefusal::kStreamsInFlight:
      // HTTP/2 refuses these streams with RST_STREAM; were one answered, it would be this.
      return {XksError::kThrottling, "too many requests on this connection"};
    case HttpRefusal::kRequestTimeout:
    case HttpRefusal::kResetFlood:
      // The connection or stream is closed rather than answered; were one answered, this.
      return {XksError::kValidation, "request not received in time"};
  }
  return {XksError::kValidation, "malformed HTTP request"};
}

}  // namespace xks::proxy
