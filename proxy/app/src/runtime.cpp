// Building the proxy's components from its configuration.
#include "xks/proxy/app/runtime.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>

namespace xks::proxy {

namespace {

// notAfter of the first certificate in a PEM file, as Unix time.
std::optional<double> certificate_expiry(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr)
    return std::nullopt;
  X509* certificate = PEM_read_X509(file, nullptr, nullptr, nullptr);
  std::fclose(file);
  if (certificate == nullptr)
    return std::nullopt;
  std::tm expiry{};
  bool ok = ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &expiry) == 1;
  X509_free(certificate);
  if (!ok)
    return std::nullopt;
  return static_cast<double>(timegm(&expiry));
}

}  // namespace

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
  runtime->metrics_ =
      std::make_unique<ProxyMetrics>(runtime->config_, hsm.token().serial, XKS_PROXY_VERSION);
  if (auto expiry = certificate_expiry(runtime->config_.tls.certificate_chain)) {
    runtime->metrics_->set_certificate_expiry(*expiry);
  }
  if (!runtime->config_.audit.path.empty()) {
    runtime->audit_ = std::make_unique<AuditLog>(
        runtime->config_.audit,
        [metrics = runtime->metrics_.get()] { metrics->record_audit_drop(); });
  }
  runtime->service_ = std::make_unique<XksService>(
      std::move(stores), hsm.keys(), hsm.health(),
      ProxyIdentity{runtime->config_.server.fleet_size, "xks-proxy project",
                    std::string("xks-proxy ") + XKS_PROXY_VERSION},
      [metrics = runtime->metrics_.get()](const XksOutcome& outcome, double seconds) {
        metrics->record(outcome, seconds);
      },
      runtime->audit_.get());
  runtime->metrics_->watch(hsm.pool(), hsm.executor(), hsm.health());
  hsm.watch_health([metrics = runtime->metrics_.get(), serial = hsm.token().serial](
                       hsm::HealthState state, const std::string& detail) {
    auto name = hsm::health_state_name(state);
    spdlog::warn("HSM {} is now {}: {}", serial, name, detail);
    metrics->record_health_transition(name);
  });
  return runtime;
}

}  // namespace xks::proxy
