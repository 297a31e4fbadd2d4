// Registering the HSM fleet's metrics.
#include "hsm_metrics.h"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <map>

#include "xks/hsm/fleet.h"

namespace xks::proxy {

void watch_hsm_fleet(metrics::Registry& registry, hsm::Fleet& fleet) {
  auto& sessions = registry.gauge("xks_hsm_sessions", "HSM sessions by state.", {"hsm", "state"});
  auto& queue = registry.gauge("xks_hsm_queue_depth",
                               "Requests waiting for an HSM executor thread.", {"hsm"});
  auto& health =
      registry.gauge("xks_hsm_health", "1 for the HSM's current health state, 0 for the others.",
                     {"hsm", "state"});
  auto& health_transitions =
      registry.counter("xks_hsm_health_transitions_total",
                       "Changes of an HSM's health state, by new state.", {"hsm", "state"});
  auto& circuit_state =
      registry.gauge("xks_hsm_circuit_state",
                     "The HSM's circuit breaker: 0 closed, 1 half-open, 2 open.", {"backend"});
  auto& circuit_transitions =
      registry.counter("xks_hsm_circuit_transitions_total",
                       "Changes of the HSM's circuit breaker, by new state.", {"backend", "to"});
  auto& keys_missing = registry.gauge(
      "xks_hsm_keys_missing",
      "Keys other HSMs of the fleet held at start that this one lacks (never sent to it).",
      {"hsm"});
  auto& keys_read = registry.gauge(
      "xks_hsm_keys_read_timestamp_seconds",
      "When the HSM's keys (versions and states) were last read again, as Unix time.", {"hsm"});
  auto& encryptions = registry.counter("xks_key_encryptions_total",
                                       "Encryptions by this process, by HSM, key and key version.",
                                       {"hsm", "key", "version"});
  auto& lifetime = registry.gauge(
      "xks_key_lifetime_encryptions",
      "A key version's encryptions on this HSM over its life as far as this process knows: "
      "recorded on the token by every proxy, and its own not yet recorded. One AES-GCM key is "
      "safe for 2^32; the fleet's HSMs hold copies of one key (sum them).",
      {"hsm", "key", "version"});
  std::map<std::string, std::size_t> missing;
  for (const hsm::Fleet::KeyGap& gap : fleet.key_gaps()) {
    for (const std::string& name : gap.missing_from)
      ++missing[name];
  }
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    hsm::Fleet::Member& member = fleet.member(i);
    hsm::Backend& backend = *member.backend;
    const std::string& name = member.name;
    keys_missing.labels({name}).set(static_cast<double>(missing[name]));
    metrics::Gauge& idle = sessions.labels({name, "idle"});
    metrics::Gauge& busy = sessions.labels({name, "busy"});
    metrics::Gauge& reconnecting = sessions.labels({name, "reconnecting"});
    metrics::Gauge& queued = queue.labels({name});
    std::array<metrics::Gauge*, 3> states = {&health.labels({name, "ACTIVE"}),
                                             &health.labels({name, "DEGRADED"}),
                                             &health.labels({name, "UNAVAILABLE"})};
    metrics::Gauge& circuit = circuit_state.labels({name});
    metrics::Gauge& read_at = keys_read.labels({name});
    registry.on_scrape([&backend, &idle, &busy, &reconnecting, &queued, states, &circuit, &read_at,
                        &encryptions, &lifetime, name] {
      for (const auto& count : backend.keys().encryption_counts()) {
        std::vector<std::string> labels{name, count.label, std::to_string(count.version)};
        metrics::Counter& made = encryptions.labels(labels);
        made.inc(static_cast<double>(count.made) - made.value());
        lifetime.labels(std::move(labels)).set(static_cast<double>(count.lifetime));
      }
      read_at.set(std::chrono::duration<double>(backend.keys_read_at().time_since_epoch()).count());
      hsm::SessionPool::Counts counts = backend.pool().counts();
      idle.set(static_cast<double>(counts.idle));
      busy.set(static_cast<double>(counts.busy));
      reconnecting.set(static_cast<double>(counts.missing));
      queued.set(static_cast<double>(backend.executor().queued()));
      auto current = static_cast<std::size_t>(backend.health().last().state);
      for (std::size_t state = 0; state < states.size(); ++state)
        states[state]->set(state == current ? 1 : 0);
      circuit.set(static_cast<double>(backend.circuit().state()));
    });
    backend.watch_circuit(
        [&circuit_transitions, name](hsm::CircuitState from, hsm::CircuitState to) {
          spdlog::warn("HSM {} circuit {} -> {}", name, hsm::circuit_state_name(from),
                       hsm::circuit_state_name(to));
          circuit_transitions.labels({name, std::string(hsm::circuit_state_name(to))}).inc();
        });
    backend.watch_health(
        [&health_transitions, name](hsm::HealthState state, const std::string& detail) {
          auto state_name = hsm::health_state_name(state);
          spdlog::warn("HSM {} is now {}: {}", name, state_name, detail);
          health_transitions.labels({name, std::string(state_name)}).inc();
        });
  }
}

}  // namespace xks::proxy
