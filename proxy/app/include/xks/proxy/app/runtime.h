// Everything the server needs, built from a Config: the HSM backend (module, token, sessions,
// key service, health, executor; see xks/hsm/backend.h), the metrics, the audit log and the
// XKS service with the key stores' verifiers. Starting it self-tests the HSM backend: a proxy
// that cannot encrypt and decrypt does not serve.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tl/expected.hpp>
#include <utility>

#include "xks/hsm/fleet.h"
#include "xks/proxy/config/config.h"
#include "xks/proxy/ops/audit_log.h"
#include "xks/proxy/ops/metrics.h"
#include "xks/proxy/xks/xks_metrics.h"
#include "xks/proxy/xks/xks_service.h"

namespace xks::proxy {

class Runtime {
 public:
  static tl::expected<std::unique_ptr<Runtime>, std::string> start(const Config& config);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  const Config& config() const { return config_; }
  XksService& service() { return *service_; }
  hsm::Fleet& fleet() { return *fleet_; }
  // Every layer registers its metrics here; served at GET /metrics.
  metrics::Registry& metrics() { return registry_; }
  AuditLog* audit() { return audit_.get(); }  // null when auditing is off
  metrics::Gauge& certificate_expiry() { return *certificate_expiry_; }
  // Every HSM reads its keys' versions and states again, soon, on its own thread (SIGHUP;
  // also every 10 s); xks_hsm_keys_read_timestamp_seconds says when it has.
  void refresh_keys();

 private:
  explicit Runtime(Config config) : config_(std::move(config)) {}
  // A key lifecycle change an HSM saw: logged and audited.
  void key_changed(std::size_t member, const std::string& change);
  // After an HSM read its keys again: warns (log and audit, once per version) when a key
  // version's encryptions across the fleet pass hsm::kEncryptionWarning.
  void keys_read();

  Config config_;
  metrics::Registry registry_;
  std::unique_ptr<XksMetrics> xks_metrics_;
  metrics::Gauge* certificate_expiry_ = nullptr;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<XksService> service_;
  std::mutex warned_mutex_;
  std::set<std::pair<std::string, std::uint32_t>> warned_;  // key versions warned about
  std::unique_ptr<hsm::Fleet> fleet_;  // last: its executors and health loops stop first
};

}  // namespace xks::proxy
