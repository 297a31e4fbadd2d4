// Requests to the application, answers back to the connection's thread.
#include "request_dispatch.h"

#include <boost/asio/post.hpp>

namespace xks::proxy {

void dispatch_request(ListenerState& state, HttpRequest request, boost::asio::any_io_executor io,
                      std::function<void(HttpResponse)> answer) {
  ++state.requests_in_flight;
  state.application.handle(std::move(request), [io, answer](HttpResponse response) {
    boost::asio::post(
        io, [answer, response = std::move(response)]() mutable { answer(std::move(response)); });
  });
}

void request_finished(ListenerState& state) {
  --state.requests_in_flight;
}

}  // namespace xks::proxy
