// The proxy's configuration: one TOML file, parsed strictly into immutable values. An unknown
// key or a bad value fails with "<file>:<line>: <key>: <problem>". Secrets (SigV4 secrets, the
// HSM PIN) are never inline: they come from files or environment variables.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "xks/hsm/circuit_breaker.h"
#include "xks/hsm/pin.h"
#include "xks/hsm/pkcs11_module.h"
#include "xks/hsm/vendor_profile.h"
#include "xks/proxy/config/ops_config.h"
#include "xks/proxy/config/server_config.h"
#include "xks/sigv4/credential.h"

namespace xks::proxy {

struct HsmConfig {
  std::string name;  // metrics label and ekmFleetDetails id; default: the token's serial
  std::string module;
  hsm::VendorProfile profile;
  hsm::TokenSelector token;
  hsm::PinSource pin;
  std::size_t sessions = 8;  // default: the vendor profile's (8 for SoftHSM, 32 otherwise)
  std::size_t workers = 0;   // HSM executor threads; 0: sized from sessions (see VendorProfile)
  std::string health_key;
  hsm::CircuitBreakerOptions circuit_breaker;  // [hsm.circuit_breaker]
};

struct CredentialConfig {
  sigv4::Credential credential;
  std::optional<std::chrono::sys_seconds> created;  // for the credential-age metric
  std::string secret_env;  // the variable the secret came from, if not a file
};

struct KeyStoreConfig {
  std::string prefix;  // "" or "/a[/b...]"; prefix + "/kms/xks/v1" is the XksProxyUriPath
  std::vector<std::string> regions;
  std::vector<CredentialConfig> credentials;
  std::optional<std::vector<std::string>> allowed_keys;  // absent: every key on the token
};

struct Config {
  LogConfig log;
  AuditConfig audit;  // off unless [audit] path is set
  ServerConfig server;
  TlsConfig tls;
  std::vector<HsmConfig> hsm;  // one, or a fleet (each named)
  std::vector<KeyStoreConfig> keystores;
};

tl::expected<Config, std::string> load_config(const std::string& path);
// The same from text in memory; `source` names it in errors (the fuzz target's entry).
tl::expected<Config, std::string> parse_config(std::string_view text, const std::string& source);

// Spec format rules, shared with the credential generator.
bool is_valid_access_key_id(std::string_view id);  // 20-30 of [A-Z2-7]
bool is_valid_secret(std::string_view secret);     // 43-64 of [A-Za-z0-9+/=]
bool is_valid_uri_prefix(std::string_view prefix);

}  // namespace xks::proxy
