// Starting the proxy from a configuration file.
#include "serve_command.h"

#include <spdlog/spdlog.h>
#include <sys/prctl.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "xks/proxy/app/application.h"
#include "xks/proxy/app/file_watch.h"
#include "xks/proxy/app/reloader.h"
#include "xks/proxy/app/runtime.h"
#include "xks/proxy/app/signals.h"
#include "xks/proxy/config/config.h"
#include "xks/proxy/ops/operational_log.h"
#include "xks/proxy/transport/server.h"
#include "xks/proxy/transport/tls.h"

namespace xks::proxy {

namespace {

// Secrets given in environment variables are read with the configuration; then, before any
// thread starts (unsetenv is not thread-safe), their values are overwritten where the kernel
// shows them (/proc/PID/environ is the original block) and the variables removed.
void forget_secret_environment(const Config& config) {
  std::vector<std::string> names;
  for (const HsmConfig& hsm : config.hsm) {
    if (hsm.pin.from == hsm::PinSource::From::kEnvironment)
      names.push_back(hsm.pin.name);
  }
  for (const KeyStoreConfig& store : config.keystores) {
    for (const CredentialConfig& credential : store.credentials) {
      if (!credential.secret_env.empty())
        names.push_back(credential.secret_env);
    }
  }
  for (const std::string& name : names) {
    if (char* value = std::getenv(name.c_str()))
      explicit_bzero(value, std::strlen(value));
    ::unsetenv(name.c_str());
  }
}

struct Started {
  std::unique_ptr<Runtime> runtime;
  std::shared_ptr<boost::asio::ssl::context> tls;
};

tl::expected<Started, std::string> start(const std::string& config_path) {
  auto config = load_config(config_path);
  if (!config)
    return tl::unexpected(config.error());
  configure_operational_log(config->log);
  forget_secret_environment(*config);  // before any thread starts
  auto tls = make_server_tls_context(config->tls);
  if (!tls)
    return tl::unexpected(tls.error());
  auto runtime = Runtime::start(*config);
  if (!runtime)
    return tl::unexpected(runtime.error());
  return Started{std::move(*runtime), std::move(*tls)};
}

// What is being served, for operators: never a secret, a PIN or a key.
void log_start_up_summary(Runtime& runtime, const Server& server) {
  const Config& config = runtime.config();
  std::string stores;
  for (const KeyStoreConfig& store : config.keystores) {
    if (!stores.empty())
      stores += ", ";
    stores += (store.prefix.empty() ? std::string("/") : store.prefix) + " (" +
              std::to_string(store.credentials.size()) + " credential(s))";
  }
  spdlog::info("xks-proxy {} on port {} (admin {}); key stores: {}", XKS_PROXY_VERSION,
               server.port(), server.admin_port(), stores);
  hsm::Fleet& fleet = runtime.fleet();
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    const hsm::Backend& backend = *fleet.member(i).backend;
    const HsmConfig& hsm = config.hsm[i];
    spdlog::info("HSM {}: token '{}' serial {} ({}), profile {}, {} sessions", fleet.member(i).name,
                 backend.token().label, backend.token().serial,
                 fleet.member(i).backend->health().model(), hsm.profile.name, hsm.sessions);
  }
  spdlog::info("mTLS {}; audit log {}", config.tls.client_ca.empty() ? "off" : "on",
               config.audit.path.empty() ? std::string("off") : config.audit.path);
}

}  // namespace

int check_command(const std::string& config_path) {
  auto started = start(config_path);
  if (!started) {
    std::cerr << "xks-proxy check: " << started.error() << "\n";
    return 1;
  }
  const Config& config = started->runtime->config();
  hsm::Fleet& fleet = started->runtime->fleet();
  std::cout << "configuration OK: " << config.keystores.size() << " key store(s)";
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    hsm::Backend& backend = *fleet.member(i).backend;
    std::cout << "; HSM token '" << backend.token().label << "' (" << backend.health().model()
              << ") passed the " << config.hsm[i].profile.name << " self-test with key '"
              << config.hsm[i].health_key << "'";
  }
  std::cout << "\n";
  return 0;
}

int serve_command(const std::string& config_path) {
  // Until the signal handling below is in place (HSM log-in can take seconds), a SIGHUP from
  // logrotate must not kill the process; SIGTERM before serving may.
  std::signal(SIGHUP, SIG_IGN);
  // No core dumps (they would hold the PIN, secrets and session state) and no ptrace or
  // /proc/PID/environ for other processes of the same user.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  std::error_code unread;
  const auto loaded_version = std::filesystem::last_write_time(config_path, unread);
  auto started = start(config_path);
  if (!started) {
    spdlog::error("cannot start: {}", started.error());
    return 1;
  }
  Runtime& runtime = *started->runtime;
  Server server(runtime.config().server, started->tls, xks_application(runtime), runtime.metrics());
  if (auto listening = server.listen(); !listening) {
    spdlog::error("cannot start: {}", listening.error());
    return 1;
  }
  log_start_up_summary(*started->runtime, server);
  Reloader reloader(config_path, runtime.config(), runtime, server);
  SignalHandling signals([&server] { server.stop(); },
                         [&runtime, &reloader] {
                           if (AuditLog* audit = runtime.audit())
                             audit->reopen();        // after logrotate moved it
                           (void)reloader.reload();  // logged, counted and audited
                           runtime.refresh_keys();   // after `xks-proxy keys rotate`...
                         });
  std::optional<FileWatch> watch;
  if (runtime.config().server.reload_on_change) {
    watch.emplace([&reloader] { return reloader.watched_files(); },
                  [&reloader] { (void)reloader.reload(); });
  }
  // A SIGHUP while starting was ignored: a file changed meanwhile (`xks-proxy keystore block`
  // during the HSM log-in, say) is applied now.
  std::error_code changed;
  if (std::filesystem::last_write_time(config_path, changed) != loaded_version && !changed) {
    spdlog::info("{} changed while starting: reloading it", config_path);
    (void)reloader.reload();
  }
  server.run();
  return 0;
}

}  // namespace xks::proxy
