// Building the proxy's components from its configuration.
#include "xks/proxy/app/runtime.h"

#include <spdlog/spdlog.h>

#include "hsm_metrics.h"
#include "xks/proxy/transport/tls.h"

namespace xks::proxy {

Runtime::~Runtime() = default;

tl::expected<std::unique_ptr<Runtime>, std::string> Runtime::start(const Config& config) {
  std::unique_ptr<Runtime> runtime(new Runtime(config));
  const HsmConfig& hsm_config = runtime->config_.hsm;
  auto backend = hsm::Backend::start(
      {.module = hsm_config.module,
       .token = hsm_config.token,
       .pin = hsm_config.pin,
       .profile = hsm_config.profile,
       .health_key = hsm_config.health_key,
       .sessions = hsm_config.sessions,
       .workers = hsm_config.workers,
       .circuit_breaker = hsm_config.circuit_breaker,
       .on_session_event = [](const std::string& what) { spdlog::warn("{}", what); }});
  if (!backend)
    return tl::unexpected(backend.error().message);
  runtime->backend_ = std::move(*backend);
  hsm::Backend& hsm = *runtime->backend_;

  std::vector<KeyStore> stores;
  for (const KeyStoreConfig& store : runtime->config_.keystores) {
    std::vector<sigv4::Credential> credentials;
    for (const CredentialConfig& credential : store.credentials) {
      credentials.push_back(credential.credential);
    }
    std::optional<std::unordered_set<std::string>> allowed;
    if (store.allowed_keys)
      allowed.emplace(store.allowed_keys->begin(), store.allowed_keys->end());
    stores.push_back({store.prefix,
                      std::make_shared<sigv4::Verifier>(std::move(credentials), store.regions),
                      std::move(allowed)});
  }
  metrics::Registry& registry = runtime->registry_;
  registry.gauge("xks_build_info", "Build of this xks-proxy.", {"version"})
      .labels({XKS_PROXY_VERSION})
      .set(1);
  register_certificate_expiry(registry, runtime->config_.tls);
  runtime->xks_metrics_ =
      std::make_unique<XksMetrics>(registry, runtime->config_.keystores, hsm.token().serial);
  if (!runtime->config_.audit.path.empty())
    runtime->audit_ = std::make_unique<AuditLog>(runtime->config_.audit, registry);
  runtime->service_ = std::make_unique<XksService>(
      std::move(stores), hsm.keys(), hsm.health(), hsm.executor(), hsm.circuit(),
      ProxyIdentity{runtime->config_.server.fleet_size, "xks-proxy project",
                    std::string("xks-proxy ") + XKS_PROXY_VERSION},
      runtime->xks_metrics_.get(), runtime->audit_.get());
  watch_hsm_backend(registry, hsm);
  return runtime;
}

}  // namespace xks::proxy
