// How the proxy answers with an XKS error: the errors themselves (names, statuses, bodies) are
// the protocol's, in xks/wire/error.h; here they become HTTP answers.
#pragma once

#include <string_view>
#include <utility>

#include "xks/proxy/config/http_limits.h"
#include "xks/proxy/transport/http_message.h"
#include "xks/wire/error.h"

namespace xks::proxy {

using wire::XksError;

// The error's status with its JSON body.
HttpResponse error_response(XksError error, std::string_view message);

// The error, and its message, for a request the transport refused before it reached the XKS
// handlers (XksService::refuse answers with it).
std::pair<XksError, std::string_view> refusal_error(HttpRefusal reason);

}  // namespace xks::proxy
