// Requests to the application, answers back to the connection's thread.
#include "request_dispatch.h"

#include <boost/asio/post.hpp>

namespace xks::proxy {

void dispatch_request(ListenerState& state, HttpRequest request, boost::asio::any_io_executor io,
                      std::function<void(HttpResponse)> answer) {
  ++state.requests_in_flight;
  // The answer (which keeps the connection alive) moves into the posted handler, so that the
  // last reference to the connection drops on its own thread, never on the thread that
  // answered (an HSM worker, the deadline watch, the audit writer).
  state.application.handle(std::move(request), [io, answer = std::move(answer)](
                                                   HttpResponse response) mutable {
    boost::asio::post(io, [answer = std::move(answer), response = std::move(response)]() mutable {
      auto last = std::move(answer);
      last(std::move(response));
    });
  });
}

void request_finished(ListenerState& state) {
  --state.requests_in_flight;
}

}  // namespace xks::proxy
