// Reloading the configuration while serving.
#include "xks/proxy/app/reloader.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "xks/proxy/ops/audit_chain.h"
#include "xks/proxy/ops/operational_log.h"
#include "xks/proxy/transport/tls.h"

namespace xks::proxy {

Reloader::Reloader(std::string config_path, Config running, Runtime& runtime, Server& server)
    : config_path_(std::move(config_path)),
      running_(std::move(running)),
      runtime_(runtime),
      server_(server) {
  metrics::Registry& registry = runtime_.metrics();
  auto& reloads = registry.counter(
      "xks_config_reloads_total",
      "Configuration reloads (SIGHUP) by result: success (applied) or failure (the file was "
      "refused and the running configuration kept).",
      {"result"});
  succeeded_ = &reloads.labels({"success"});
  failed_ = &reloads.labels({"failure"});
  last_successful_ = &registry
                          .gauge("xks_config_last_reload_successful",
                                 "1 when the last reload was applied (or none was tried), 0 "
                                 "when the file was refused.")
                          .labels({});
  last_successful_->set(1);
  last_success_time_ =
      &registry
           .gauge("xks_config_last_reload_success_timestamp_seconds",
                  "When the configuration was last loaded (start or reload), as Unix time.")
           .labels({});
  last_success_time_->set(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  restart_required_ = &registry
                           .gauge("xks_config_restart_required",
                                  "1 when the file changes settings that apply only at start "
                                  "([server], [hsm], [audit], [log] format).")
                           .labels({});
}

std::optional<std::string> Reloader::environment(const std::string& name) const {
  for (const HsmConfig& hsm : running_.hsm) {
    if (hsm.pin.from == hsm::PinSource::From::kEnvironment && hsm.pin.name == name)
      return hsm.pin.value;
  }
  for (const KeyStoreConfig& store : running_.keystores) {
    for (const CredentialConfig& credential : store.credentials) {
      if (credential.secret_env == name)
        return credential.credential.secret_access_key;
    }
  }
  return std::nullopt;  // a variable the running configuration did not read: not read now
}

std::vector<std::string> Reloader::watched_files() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> files = {config_path_, running_.tls.certificate_chain,
                                    running_.tls.private_key};
  if (!running_.tls.client_ca.empty())
    files.push_back(running_.tls.client_ca);
  for (const KeyStoreConfig& store : running_.keystores) {
    for (const CredentialConfig& credential : store.credentials) {
      if (!credential.secret_file.empty())
        files.push_back(credential.secret_file);
    }
  }
  return files;
}

tl::expected<Reloader::Applied, std::string> Reloader::reload() {
  std::lock_guard lock(mutex_);
  auto applied = apply(config_path_);
  if (!applied) {
    spdlog::error("configuration reload refused, the running configuration stays: {}",
                  applied.error());
    record(false, applied.error());
    return applied;
  }
  std::string restart;
  for (const std::string& section : applied->needs_restart)
    restart += (restart.empty() ? "" : ", ") + section;
  if (restart.empty()) {
    spdlog::info("configuration reloaded from {}", config_path_);
  } else {
    spdlog::warn(
        "configuration reloaded from {}; changes to {} need a restart and were not "
        "applied",
        config_path_, restart);
  }
  record(true, restart);
  return applied;
}

tl::expected<Reloader::Applied, std::string> Reloader::apply(const std::string& path) {
  auto loaded = load_config(path, [this](const std::string& name) { return environment(name); });
  if (!loaded)
    return tl::unexpected(loaded.error());
  Config& next = *loaded;
  // Built before anything changes: a certificate or key that does not load refuses the reload.
  auto tls = make_server_tls_context(next.tls);
  if (!tls)
    return tl::unexpected(tls.error());

  Applied applied;
  if (next.server != running_.server)
    applied.needs_restart.push_back("[server]");
  if (next.hsm != running_.hsm)
    applied.needs_restart.push_back("[hsm]");
  if (next.audit != running_.audit)
    applied.needs_restart.push_back("[audit]");
  if (next.log.json != running_.log.json)
    applied.needs_restart.push_back("[log] format");
  // What cannot change live keeps its running value (and is reported again next time).
  next.server = running_.server;
  next.hsm = running_.hsm;
  next.audit = running_.audit;
  next.log.json = running_.log.json;

  server_.replace_tls(std::move(*tls));
  set_certificate_expiry(runtime_.certificate_expiry(), next.tls);
  runtime_.service().reconfigure(next.keystores);
  set_operational_log_level(next.log.level);
  running_ = std::move(next);
  restart_required_->set(applied.needs_restart.empty() ? 0 : 1);
  return applied;
}

void Reloader::record(bool success, const std::string& detail) {
  (success ? succeeded_ : failed_)->inc();
  last_successful_->set(success ? 1 : 0);
  if (success) {
    last_success_time_->set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  }
  if (AuditLog* audit = runtime_.audit()) {
    std::string fields;
    append_json_field(fields, "event", "reload");
    append_json_field(fields, "result", success ? "success" : "failure");
    append_json_field(fields, success ? "needsRestart" : "error", detail);
    audit->record_event(audit_record_kind::kConfig, fields);
  }
}

}  // namespace xks::proxy
