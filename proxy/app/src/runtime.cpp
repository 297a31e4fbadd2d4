// Building the proxy's components from its configuration.
#include "xks/proxy/app/runtime.h"

#include <spdlog/spdlog.h>

#include <map>

#include "hsm_metrics.h"
#include "xks/proxy/ops/audit_chain.h"
#include "xks/proxy/transport/tls.h"

namespace xks::proxy {

void Runtime::key_changed(std::size_t member, const std::string& change) {
  const std::string& name = fleet_->member(member).name;
  spdlog::warn("HSM {}: {}", name, change);
  if (audit_) {
    std::string fields;
    append_json_field(fields, "event", "key_change");
    append_json_field(fields, "hsm", name);
    append_json_field(fields, "change", change);
    audit_->record_event(audit_record_kind::kConfig, fields);
  }
}

void Runtime::keys_read() {
  // The fleet's HSMs hold copies of one key: what counts is their sum.
  std::map<std::pair<std::string, std::uint32_t>, std::uint64_t> totals;
  for (std::size_t i = 0; i < fleet_->size(); ++i) {
    for (const auto& count : fleet_->member(i).backend->keys().encryption_counts())
      totals[{count.label, count.version}] += count.lifetime;
  }
  std::lock_guard lock(warned_mutex_);
  for (const auto& [version, total] : totals) {
    if (total < hsm::kEncryptionWarning || !warned_.insert(version).second)
      continue;
    const auto& [key, number] = version;
    spdlog::warn(
        "key {} version {} has made {} encryptions; one AES-GCM key is safe for 2^32 (4294967296) "
        "with random IVs: rotate it now (xks-proxy keys rotate {} --config FILE)",
        key, number, total, key);
    if (audit_) {
      std::string fields;
      append_json_field(fields, "event", "encryption_limit_near");
      append_json_field(fields, "keyId", key);
      append_json_field(fields, "version", std::to_string(number));
      append_json_field(fields, "encryptions", std::to_string(total));
      audit_->record_event(audit_record_kind::kConfig, fields);
    }
  }
}

void Runtime::refresh_keys() {
  for (std::size_t i = 0; i < fleet_->size(); ++i)
    fleet_->member(i).backend->request_key_refresh();
}

Runtime::~Runtime() {
  // The deadline watch stops before the fleet goes; the fleet's executors run what they still
  // hold (which needs the service) before the service goes.
  if (service_)
    service_->stop_deadline_watch();
  fleet_.reset();
}

tl::expected<std::unique_ptr<Runtime>, std::string> Runtime::start(const Config& config) {
  std::unique_ptr<Runtime> runtime(new Runtime(config));
  std::vector<std::pair<std::string, std::unique_ptr<hsm::Backend>>> backends;
  for (const HsmConfig& hsm_config : runtime->config_.hsm) {
    auto backend = hsm::Backend::start(
        {.module = hsm_config.module,
         .token = hsm_config.token,
         .pin = hsm_config.pin,
         .profile = hsm_config.profile,
         .health_key = hsm_config.health_key,
         .sessions = hsm_config.sessions,
         .workers = hsm_config.workers,
         .circuit_breaker = hsm_config.circuit_breaker,
         .on_event = [](const std::string& what) { spdlog::warn("{}", what); },
         .on_key_change = [runtime = runtime.get(), member = backends.size()](
                              const std::string& change) { runtime->key_changed(member, change); },
         // Only once the fleet is assembled (the first reading is 10 s after start).
         .on_keys_read = [runtime = runtime.get()] { runtime->keys_read(); }});
    if (!backend) {
      return tl::unexpected(hsm_config.name.empty()
                                ? backend.error().message
                                : "HSM '" + hsm_config.name + "': " + backend.error().message);
    }
    std::string name = hsm_config.name.empty() ? (*backend)->token().serial : hsm_config.name;
    backends.emplace_back(std::move(name), std::move(*backend));
  }
  auto fleet = hsm::Fleet::assemble(std::move(backends));
  if (!fleet)
    return tl::unexpected(fleet.error().message);
  runtime->fleet_ = std::move(*fleet);
  hsm::Fleet& hsm = *runtime->fleet_;
  for (std::size_t i = 0; i < hsm.size(); ++i) {
    hsm::Backend& backend = *hsm.member(i).backend;
    if (backend.executor().inline_calls()) {
      spdlog::info(
          "HSM {}: {} sessions, calls inline on the I/O threads for HTTP/1.1 and on {} HSM "
          "threads for HTTP/2 (in-process module)",
          hsm.member(i).name, backend.pool().size(), backend.executor().threads());
    } else {
      spdlog::info("HSM {}: {} sessions, calls on {} HSM threads", hsm.member(i).name,
                   backend.pool().size(), backend.executor().threads());
    }
  }
  for (const hsm::Fleet::KeyGap& gap : hsm.key_gaps()) {
    std::string lacking;
    for (const std::string& name : gap.missing_from)
      lacking += (lacking.empty() ? "" : ", ") + name;
    spdlog::warn("key '{}' is missing from HSM {}: it is served by the others only", gap.key_id,
                 lacking);
  }

  metrics::Registry& registry = runtime->registry_;
  registry.gauge("xks_build_info", "Build of this xks-proxy.", {"version"})
      .labels({XKS_PROXY_VERSION})
      .set(1);
  runtime->certificate_expiry_ = &register_certificate_expiry(registry);
  set_certificate_expiry(*runtime->certificate_expiry_, runtime->config_.tls);
  std::vector<std::string> names;
  for (std::size_t i = 0; i < hsm.size(); ++i)
    names.push_back(hsm.member(i).name);
  runtime->xks_metrics_ = std::make_unique<XksMetrics>(registry, std::move(names));
  if (!runtime->config_.audit.path.empty()) {
    auto audit = AuditLog::open(runtime->config_.audit, registry, XKS_PROXY_VERSION);
    if (!audit)
      return tl::unexpected(audit.error());
    runtime->audit_ = std::move(*audit);
  }
  runtime->service_ = std::make_unique<XksService>(
      runtime->config_.keystores, hsm,
      ProxyIdentity{runtime->config_.server.fleet_size, "xks-proxy project",
                    std::string("xks-proxy ") + XKS_PROXY_VERSION},
      runtime->xks_metrics_.get(), runtime->audit_.get());
  watch_hsm_fleet(registry, hsm);
  return runtime;
}

}  // namespace xks::proxy
