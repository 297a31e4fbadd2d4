// Hands an XKS request from an I/O thread to the HSM executor and its answer back: the one
// path shared by HTTP/1.1 and HTTP/2.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>

#include "session_context.h"
#include "xks/proxy/transport/http_message.h"

namespace xks::proxy {

// Runs the XKS handler with the request deadline starting now, then calls `answer` on `io`
// (at once with 503 when the HSM queue is full). The request counts as in flight until the
// caller, having written the answer, calls request_finished().
void dispatch_request(SessionContext& context, HttpRequest request, boost::asio::any_io_executor io,
                      std::function<void(HttpResponse)> answer);

void request_finished(SessionContext& context);

}  // namespace xks::proxy
