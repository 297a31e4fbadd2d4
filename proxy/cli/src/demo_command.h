// `xks-proxy demo`: the embedded default. Creates (idempotently) a SoftHSM token with demo keys,
// a local CA and server certificate, a SigV4 credential, the proxy configuration and the KMS
// console JSON in a state directory, then serves on loopback until SIGTERM.
#pragma once

#include <cstdint>
#include <string>

namespace xks::proxy {

struct DemoOptions {
  std::string state_dir = ".xks-demo";
  std::uint16_t port = 8443;
  std::uint16_t admin_port = 9090;
  bool mtls = false;  // require the demo client certificate (CN cks.kms.us-east-1.amazonaws.com)
  bool setup_only = false;
};

int demo_command(const DemoOptions& options);

}  // namespace xks::proxy
