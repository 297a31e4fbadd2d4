// The HSM fleet as operators watch it, each member labelled by its name: gauges read at each
// scrape (sessions by state, requests waiting for an executor thread, the health state, the
// circuit's state), health and circuit transitions, counted and logged, and the keys a member
// lacks that others hold.
#pragma once

#include "xks/proxy/ops/metrics.h"

namespace xks::hsm {
class Fleet;
}

namespace xks::proxy {

// Registers the metrics and starts each member's health loop (Backend::watch_health).
void watch_hsm_fleet(metrics::Registry& registry, hsm::Fleet& fleet);

}  // namespace xks::proxy
