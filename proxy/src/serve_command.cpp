// Starting the proxy from a configuration file.
#include "serve_command.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "tls.h"
#include "xks/proxy/config.h"
#include "xks/proxy/runtime.h"
#include "xks/proxy/server.h"

namespace xks::proxy {

namespace {

struct Started {
  std::unique_ptr<Runtime> runtime;
  std::shared_ptr<boost::asio::ssl::context> tls;
};

tl::expected<Started, std::string> start(const std::string& config_path) {
  auto config = load_config(config_path);
  if (!config)
    return tl::unexpected(config.error());
  auto tls = make_server_tls_context(config->tls);
  if (!tls)
    return tl::unexpected(tls.error());
  auto runtime = Runtime::start(*config);
  if (!runtime)
    return tl::unexpected(runtime.error());
  return Started{std::move(*runtime), std::move(*tls)};
}

}  // namespace

int check_command(const std::string& config_path) {
  auto started = start(config_path);
  if (!started) {
    std::cerr << "xks-proxy check: " << started.error() << "\n";
    return 1;
  }
  const Config& config = started->runtime->config();
  std::cout << "configuration OK: " << config.keystores.size() << " key store(s); HSM token '"
            << started->runtime->token().label << "' (" << started->runtime->health().model()
            << ") passed the " << config.hsm.profile.name << " self-test with key '"
            << config.hsm.health_key << "'\n";
  return 0;
}

int serve_command(const std::string& config_path) {
  auto started = start(config_path);
  if (!started) {
    spdlog::error("cannot start: {}", started.error());
    return 1;
  }
  // OpenSSL writes to the sockets itself (see TlsSocket); a peer that has gone must cost an
  // EPIPE on that connection, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  Server server(*started->runtime, started->tls);
  if (auto listening = server.listen(); !listening) {
    spdlog::error("cannot start: {}", listening.error());
    return 1;
  }
  server.run();
  return 0;
}

}  // namespace xks::proxy
