// Dispatching XKS requests to the HSM executor.
#include "request_dispatch.h"

#include <boost/asio/post.hpp>

#include "xks/proxy/xks/xks_error.h"

namespace xks::proxy {

void dispatch_request(SessionContext& context, HttpRequest request, boost::asio::any_io_executor io,
                      std::function<void(HttpResponse)> answer) {
  ++context.requests_in_flight;
  auto received = hsm::SessionPool::Clock::now();
  auto deadline = received + context.config.request_deadline;
  auto work = [&context, request = std::move(request), received, deadline, io, answer]() mutable {
    HttpResponse response = context.runtime.service().handle(request, received, deadline);
    boost::asio::post(io, [answer = std::move(answer), response = std::move(response)]() mutable {
      answer(std::move(response));
    });
  };
  if (!context.runtime.executor().submit(std::move(work))) {
    boost::asio::post(io, [answer = std::move(answer)] {
      answer({503, error_body(XksError::kDependencyTimeout, "the HSM queue is full")});
    });
  }
}

void request_finished(SessionContext& context) {
  --context.requests_in_flight;
}

}  // namespace xks::proxy
