// XKS error names, statuses and bodies.
#include "xks/wire/error.h"

namespace xks::wire {

static_assert(static_cast<std::size_t>(XksError::kDependencyTimeout) + 1 == kXksErrorCount);

std::string_view error_name(XksError error) {
  switch (error) {
    case XksError::kValidation:
      return "ValidationException";
    case XksError::kInvalidState:
      return "InvalidStateException";
    case XksError::kInvalidCiphertext:
      return "InvalidCiphertextException";
    case XksError::kInvalidKeyUsage:
      return "InvalidKeyUsageException";
    case XksError::kAuthenticationFailed:
      return "AuthenticationFailedException";
    case XksError::kAccessDenied:
      return "AccessDeniedException";
    case XksError::kKeyNotFound:
      return "KeyNotFoundException";
    case XksError::kInvalidUriPath:
      return "InvalidUriPathException";
    case XksError::kMethodNotAllowed:
      return "MethodNotAllowedException";
    case XksError::kThrottling:
      return "ThrottlingException";
    case XksError::kInternal:
      return "InternalException";
    case XksError::kUnsupportedOperation:
      return "UnsupportedOperationException";
    case XksError::kDependencyTimeout:
      return "DependencyTimeoutException";
  }
  return "InternalException";
}

int http_status(XksError error) {
  switch (error) {
    case XksError::kValidation:
    case XksError::kInvalidState:
    case XksError::kInvalidCiphertext:
    case XksError::kInvalidKeyUsage:
      return 400;
    case XksError::kAuthenticationFailed:
      return 401;
    case XksError::kAccessDenied:
      return 403;
    case XksError::kKeyNotFound:
    case XksError::kInvalidUriPath:
      return 404;
    case XksError::kMethodNotAllowed:
      return 405;
    case XksError::kThrottling:
      return 429;
    case XksError::kInternal:
      return 500;
    case XksError::kUnsupportedOperation:
      return 501;
    case XksError::kDependencyTimeout:
      return 503;
  }
  return 500;
}

std::string error_body(XksError error, std::string_view message) {
  std::string body = R"({"errorName":")";
  body.append(error_name(error)).append(R"(","errorMessage":")");
  std::size_t written = 0;
  for (char c : message) {
    if (written == 511)
      break;
    if (c < 0x20 || c > 0x7e)
      c = '?';
    if (c == '"' || c == '\\') {
      if (written + 2 > 511)
        break;
      body.push_back('\\');
      ++written;
    }
    body.push_back(c);
    ++written;
  }
  body.append("\"}");
  return body;
}

}  // namespace xks::wire
