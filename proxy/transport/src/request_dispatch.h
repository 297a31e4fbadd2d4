// Hands a complete request to the application and its answer back to the connection's own
// thread: the one path shared by HTTP/1.1 and HTTP/2.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>

#include "listener_state.h"
#include "xks/proxy/transport/http_message.h"

namespace xks::proxy {

// Gives `request` to the application; its answer reaches `answer` on `io`. The request counts
// as in flight (the drain waits for it) until the caller, having written the answer, calls
// request_finished().
void dispatch_request(ListenerState& state, HttpRequest request, boost::asio::any_io_executor io,
                      std::function<void(HttpResponse)> answer);

void request_finished(ListenerState& state);

}  // namespace xks::proxy
