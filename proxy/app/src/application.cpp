// Wiring the XKS service, its metrics and health to the transport.
#include "xks/proxy/app/application.h"

#include "xks/proxy/app/runtime.h"

namespace xks::proxy {

Application xks_application(Runtime& runtime) {
  Application application;
  application.handle = [&runtime](HttpRequest request, Respond respond) {
    auto received = XksService::Clock::now();
    runtime.service().handle(std::move(request), received,
                             received + runtime.config().server.request_deadline,
                             std::move(respond));
  };
  application.render_refusal = refusal_answer;
  application.scrape = [&runtime] { return runtime.metrics().serialize(); };
  application.ready = [&runtime] {
    return runtime.health().last().state != hsm::HealthState::kUnavailable &&
           runtime.circuit().state() == hsm::CircuitState::kClosed;
  };
  return application;
}

}  // namespace xks::proxy
