// Building the proxy's components from its configuration.
#include "xks/proxy/app/runtime.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

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

std::size_t threads_or_cores(std::size_t configured) {
  return configured != 0 ? configured : std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

Runtime::~Runtime() = default;

// Deep health in the background, so that GetHealthStatus and /readyz answer from a fresh
// report without waiting on the HSM; state changes are logged and counted.
void Runtime::check_health_periodically(std::stop_token stop) {
  constexpr auto kInterval = std::chrono::seconds(10);
  constexpr auto kTimeout = std::chrono::seconds(5);
  std::mutex mutex;
  std::condition_variable_any wake;
  hsm::HealthState previous = health_->last().state;
  std::unique_lock lock(mutex);
  while (!wake.wait_for(lock, stop, kInterval, [] { return false; }) && !stop.stop_requested()) {
    hsm::HealthReport report = health_->check(hsm::SessionPool::Clock::now() + kTimeout);
    if (report.state != previous) {
      auto state = hsm::health_state_name(report.state);
      spdlog::warn("HSM {} is now {}: {}", token_.serial, state, report.detail);
      metrics_->record_health_transition(state);
      previous = report.state;
    }
  }
}

tl::expected<std::unique_ptr<Runtime>, std::string> Runtime::start(const Config& config) {
  std::unique_ptr<Runtime> runtime(new Runtime(config));
  const HsmConfig& hsm_config = runtime->config_.hsm;
  auto pin = hsm::read_pin(hsm_config.pin);
  if (!pin)
    return tl::unexpected(pin.error().message);
  auto module = hsm::Pkcs11Module::load(hsm_config.module);
  if (!module)
    return tl::unexpected(module.error().message);
  runtime->module_ = *module;
  auto token = runtime->module_->find_token(hsm_config.token);
  if (!token)
    return tl::unexpected(token.error().message);
  runtime->token_ = *token;
  auto pool = hsm::SessionPool::open(
      runtime->module_, token->slot_id, std::move(*pin),
      {.sessions = hsm_config.sessions,
       .on_event = [](const std::string& what) { spdlog::warn("{}", what); }});
  if (!pool)
    return tl::unexpected("HSM token '" + token->label + "': " + pool.error().message);
  runtime->pool_ = std::move(*pool);
  runtime->keys_ = std::make_unique<hsm::KeyService>(*runtime->pool_, hsm_config.profile);

  auto deadline = hsm::SessionPool::Clock::now() + std::chrono::seconds(10);
  if (auto tested = runtime->keys_->self_test(hsm_config.health_key, deadline); !tested) {
    return tl::unexpected("self-test of vendor profile '" + hsm_config.profile.name +
                          "' with health key '" + hsm_config.health_key +
                          "' failed: " + tested.error().message);
  }
  runtime->health_ = std::make_unique<hsm::HsmHealth>(*runtime->keys_, hsm_config.health_key,
                                                      *token, hsm::HealthOptions{});
  runtime->health_->check(deadline);

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
      std::make_unique<ProxyMetrics>(runtime->config_, token->serial, XKS_PROXY_VERSION);
  if (auto expiry = certificate_expiry(runtime->config_.tls.certificate_chain)) {
    runtime->metrics_->set_certificate_expiry(*expiry);
  }
  if (!runtime->config_.audit.path.empty()) {
    runtime->audit_ = std::make_unique<AuditLog>(
        runtime->config_.audit,
        [metrics = runtime->metrics_.get()] { metrics->record_audit_drop(); });
  }
  runtime->service_ = std::make_unique<XksService>(
      std::move(stores), *runtime->keys_, *runtime->health_,
      ProxyIdentity{runtime->config_.server.fleet_size, "xks-proxy project",
                    std::string("xks-proxy ") + XKS_PROXY_VERSION},
      [metrics = runtime->metrics_.get()](const XksOutcome& outcome, double seconds) {
        metrics->record(outcome, seconds);
      },
      runtime->audit_.get());
  // Queue bound: a few deadlines' worth of work per session; beyond that, shed at once.
  std::size_t workers = threads_or_cores(hsm_config.workers);
  runtime->executor_ = std::make_unique<hsm::HsmExecutor>(workers, 64 * hsm_config.sessions);
  runtime->metrics_->watch(*runtime->pool_, *runtime->executor_, *runtime->health_);
  runtime->health_checks_ = std::jthread(
      [raw = runtime.get()](std::stop_token stop) { raw->check_health_periodically(stop); });
  return runtime;
}

}  // namespace xks::proxy
