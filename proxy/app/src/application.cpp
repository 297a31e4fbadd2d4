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
  application.render_refusal = [&runtime](HttpRefusal reason, const std::string& client) {
    return runtime.service().refuse(reason, client);
  };
  application.scrape = [&runtime] { return runtime.metrics().serialize(); };
  // Ready while some HSM can serve (its circuit closed and its health not UNAVAILABLE) and,
  // when auditing is mandatory (on_full = reject), the audit log can be written.
  application.ready = [&runtime] {
    if (AuditLog* audit = runtime.audit(); audit != nullptr && !audit->ready())
      return false;
    hsm::Fleet& fleet = runtime.fleet();
    for (std::size_t i = 0; i < fleet.size(); ++i) {
      hsm::Backend& backend = *fleet.member(i).backend;
      if (backend.circuit().state() == hsm::CircuitState::kClosed &&
          backend.health().last().state != hsm::HealthState::kUnavailable)
        return true;
    }
    return false;
  };
  return application;
}

}  // namespace xks::proxy
