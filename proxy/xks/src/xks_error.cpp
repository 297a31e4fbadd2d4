// XKS errors as HTTP answers, and the answers to the transport's refusals.
#include "xks/proxy/xks/xks_error.h"

namespace xks::proxy {

HttpResponse error_response(XksError error, std::string_view message) {
  return {http_status(error), error_body(error, message)};
}

HttpResponse refusal_answer(HttpRefusal reason) {
  switch (reason) {
    case HttpRefusal::kMalformed:
      return error_response(XksError::kValidation, "malformed HTTP request");
    case HttpRefusal::kHeaderBytes:
      return error_response(XksError::kValidation, "request header too large");
    case HttpRefusal::kBodyBytes:
      return error_response(XksError::kValidation, "request body too large");
    case HttpRefusal::kFramingBytes:
      return error_response(XksError::kValidation, "chunk line or trailers too large");
    case HttpRefusal::kConnectionBufferBytes:
    case HttpRefusal::kStreamsInFlight:
      // HTTP/2 refuses these streams with RST_STREAM; were one answered, it would be this.
      return error_response(XksError::kThrottling, "too many requests on this connection");
    case HttpRefusal::kRequestTimeout:
    case HttpRefusal::kResetFlood:
      // The connection or stream is closed rather than answered; were one answered, this.
      return error_response(XksError::kValidation, "request not received in time");
  }
  return error_response(XksError::kValidation, "malformed HTTP request");
}

}  // namespace xks::proxy
