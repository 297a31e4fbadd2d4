// Registering the HSM backend's metrics.
#include "hsm_metrics.h"

#include <spdlog/spdlog.h>

#include <array>

#include "xks/hsm/backend.h"

namespace xks::proxy {

void watch_hsm_backend(metrics::Registry& registry, hsm::Backend& backend) {
  const std::string& hsm = backend.token().serial;
  auto& sessions = registry.gauge("xks_hsm_sessions", "HSM sessions by state.", {"hsm", "state"});
  metrics::Gauge& idle = sessions.labels({hsm, "idle"});
  metrics::Gauge& busy = sessions.labels({hsm, "busy"});
  metrics::Gauge& missing = sessions.labels({hsm, "reconnecting"});
  metrics::Gauge& queue =
      registry.gauge("xks_hsm_queue_depth", "Requests waiting for an HSM executor thread.")
          .labels({});
  auto& health =
      registry.gauge("xks_hsm_health", "1 for the HSM's current health state, 0 for the others.",
                     {"hsm", "state"});
  std::array<metrics::Gauge*, 3> states = {&health.labels({hsm, "ACTIVE"}),
                                           &health.labels({hsm, "DEGRADED"}),
                                           &health.labels({hsm, "UNAVAILABLE"})};
  registry.on_scrape([&backend, &idle, &busy, &missing, &queue, states] {
    hsm::SessionPool::Counts counts = backend.pool().counts();
    idle.set(static_cast<double>(counts.idle));
    busy.set(static_cast<double>(counts.busy));
    missing.set(static_cast<double>(counts.missing));
    queue.set(static_cast<double>(backend.executor().queued()));
    auto current = static_cast<std::size_t>(backend.health().last().state);
    for (std::size_t i = 0; i < states.size(); ++i)
      states[i]->set(i == current ? 1 : 0);
  });
  auto& transitions =
      registry.counter("xks_hsm_health_transitions_total",
                       "Changes of an HSM's health state, by new state.", {"hsm", "state"});
  auto& circuit_state = registry.gauge(
      "xks_hsm_circuit_state", "The HSM backend's circuit breaker: 0 closed, 1 half-open, 2 open.",
      {"backend"});
  metrics::Gauge& circuit = circuit_state.labels({hsm});
  registry.on_scrape(
      [&backend, &circuit] { circuit.set(static_cast<double>(backend.circuit().state())); });
  auto& circuit_transitions = registry.counter(
      "xks_hsm_circuit_transitions_total",
      "Changes of the HSM backend's circuit breaker, by new state.", {"backend", "to"});
  backend.watch_circuit([&circuit_transitions, hsm](hsm::CircuitState from, hsm::CircuitState to) {
    spdlog::warn("HSM {} circuit {} -> {}", hsm, hsm::circuit_state_name(from),
                 hsm::circuit_state_name(to));
    circuit_transitions.labels({hsm, std::string(hsm::circuit_state_name(to))}).inc();
  });
  backend.watch_health([&transitions, hsm](hsm::HealthState state, const std::string& detail) {
    auto name = hsm::health_state_name(state);
    spdlog::warn("HSM {} is now {}: {}", hsm, name, detail);
    transitions.labels({hsm, std::string(name)}).inc();
  });
}

}  // namespace xks::proxy
