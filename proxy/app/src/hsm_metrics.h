// The HSM backend as operators watch it: gauges read at each scrape (sessions by state, requests
// waiting for an executor thread, the health state) and health transitions, counted and logged.
#pragma once

#include "xks/proxy/ops/metrics.h"

namespace xks::hsm {
class Backend;
}

namespace xks::proxy {

// Registers the gauges and starts the backend's health loop (Backend::watch_health).
void watch_hsm_backend(metrics::Registry& registry, hsm::Backend& backend);

}  // namespace xks::proxy
