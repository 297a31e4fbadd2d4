// Everything the server needs, built from a Config: the HSM module, session pool, key service,
// health, HSM executor and the key stores' verifiers. Starting it runs the vendor profile's
// self-test with the health key: a proxy that cannot encrypt and decrypt does not serve.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <tl/expected.hpp>

#include "xks/hsm/hsm_executor.h"
#include "xks/hsm/hsm_health.h"
#include "xks/hsm/key_service.h"
#include "xks/hsm/session_pool.h"
#include "xks/proxy/app/proxy_metrics.h"
#include "xks/proxy/config/config.h"
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
  hsm::HsmExecutor& executor() { return *executor_; }
  hsm::HsmHealth& health() { return *health_; }
  ProxyMetrics& metrics() { return *metrics_; }
  AuditLog* audit() { return audit_.get(); }  // null when auditing is off
  const hsm::TokenInfo& token() const { return token_; }

 private:
  explicit Runtime(Config config) : config_(std::move(config)) {}

  Config config_;
  hsm::TokenInfo token_;
  std::shared_ptr<hsm::Pkcs11Module> module_;
  std::unique_ptr<hsm::SessionPool> pool_;
  std::unique_ptr<hsm::KeyService> keys_;
  std::unique_ptr<hsm::HsmHealth> health_;
  std::unique_ptr<ProxyMetrics> metrics_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<XksService> service_;
  std::unique_ptr<hsm::HsmExecutor> executor_;  // joined before the members it uses go
  std::jthread health_checks_;                  // last: stopped first

  void check_health_periodically(std::stop_token stop);
};

}  // namespace xks::proxy
