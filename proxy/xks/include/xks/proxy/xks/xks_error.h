// The errors an XKS proxy answers with (spec "Error codes"): the only way a handler says no.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "xks/proxy/config/http_limits.h"
#include "xks/proxy/transport/http_message.h"

namespace xks::proxy {

enum class XksError : std::uint8_t {
  kValidation,            // 400
  kInvalidState,          // 400
  kInvalidCiphertext,     // 400
  kInvalidKeyUsage,       // 400
  kAuthenticationFailed,  // 401
  kAccessDenied,          // 403
  kKeyNotFound,           // 404
  kInvalidUriPath,        // 404
  kMethodNotAllowed,      // 405 (the spec names only the status; the name is ours)
  kPayloadTooLarge,       // 413 (ours too: bodies beyond server.max_body_bytes)
  kHeaderFieldsTooLarge,  // 431 (ours too: headers beyond server.max_header_bytes)
  kThrottling,            // 429
  kInternal,              // 500
  kUnsupportedOperation,  // 501
  kDependencyTimeout,     // 503
};

std::string_view error_name(XksError error);
int http_status(XksError error);

// {"errorName":"...","errorMessage":"..."}: compact, the message cut to 511 printable ASCII
// characters (spec: fewer than 512, printable ASCII only).
std::string error_body(XksError error, std::string_view message);

// The answer to a request the transport refused before it reached the XKS handlers.
HttpResponse refusal_answer(HttpRefusal reason);

}  // namespace xks::proxy
