// `xks-proxy demo`: the embedded default. Creates (idempotently) SoftHSM tokens with demo keys,
// a local CA and server certificate, a SigV4 credential, the proxy configuration and the KMS
// console JSON in a state directory, then serves on loopback until SIGTERM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace xks::proxy {

struct DemoOptions {
  std::string state_dir = ".xks-demo";
  std::uint16_t port = 8443;
  std::uint16_t admin_port = 9090;
  bool mtls = false;  // require the demo client certificate (CN cks.kms.us-east-1.amazonaws.com)
  bool setup_only = false;
  // HSMs: one SoftHSM token each, holding the same keys (the same key material imported into
  // each, sensitive and non-extractable); more than one makes a fleet ([[hsm]] hsm-1..hsm-N).
  unsigned backends = 1;
  // Each HSM's implementation, "softhsm" or "nss" (NSS softoken, at most one: it serves one
  // database per process); empty: every one SoftHSM. With fault_dir, each fault module stands
  // in front of its HSM's implementation. A mixed fleet holds the same key material
  // on both, so that what one encrypts the other decrypts.
  std::vector<std::string> vendors;
  // When set, every HSM is reached through a copy of the fault-injecting module (test support,
  // found beside the binary's build tree): DIR/backend-K.so, steered by DIR/backend-K.ctl.
  std::string fault_dir;
};

int demo_command(const DemoOptions& options);

}  // namespace xks::proxy
