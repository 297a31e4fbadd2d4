// The errors an XKS proxy answers with (spec "Error codes"): each with its errorName and HTTP
// status, and the JSON error body. Names the spec does not define are marked "ours".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace xks::wire {

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
  kThrottling,            // 429
  kInternal,              // 500
  kUnsupportedOperation,  // 501
  kDependencyTimeout,     // 503
};
inline constexpr std::size_t kXksErrorCount = 13;

// "ValidationException", ...
std::string_view error_name(XksError error);
int http_status(XksError error);

// {"errorName":"...","errorMessage":"..."}: compact, the message cut to 511 printable ASCII
// characters (spec: fewer than 512, printable ASCII only; others become '?').
std::string error_body(XksError error, std::string_view message);

}  // namespace xks::wire
