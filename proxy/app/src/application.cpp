// Wiring the XKS service, its metrics and health to the transport.
#include "xks/proxy/app/application.h"

#include "xks/proxy/app/runtime.h"
#include "xks/proxy/xks/xks_error.h"

namespace xks::proxy {

Application xks_application(Runtime& runtime) {
  Application application;
  application.handle = [&runtime](HttpRequest request, Respond respond) {
    auto received = hsm::SessionPool::Clock::now();
    auto deadline = received + runtime.config().server.request_deadline;
    // SigV4, JSON and the answer run on the HSM executor with the HSM call.
    auto work = [&runtime, request = std::move(request), received, deadline, respond]() {
      respond(runtime.service().handle(request, received, deadline));
    };
    if (!runtime.executor().submit(std::move(work)))
      respond(error_response(XksError::kDependencyTimeout, "the HSM queue is full"));
  };
  application.render_refusal = refusal_answer;
  application.scrape = [&runtime] { return runtime.metrics().serialize(); };
  application.ready = [&runtime] {
    return runtime.health().last().state != hsm::HealthState::kUnavailable;
  };
  return application;
}

}  // namespace xks::proxy
