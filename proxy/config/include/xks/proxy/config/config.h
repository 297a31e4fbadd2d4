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

#include "xks/hsm/pin.h"
#include "xks/hsm/pkcs11_module.h"
#include "xks/hsm/vendor_profile.h"
#include "xks/proxy/config/http_limits.h"
#include "xks/sigv4/credential.h"

namespace xks::proxy {

struct ListenAddress {
  std::string host;  // IPv4 or IPv6 literal
  std::uint16_t port = 0;
};

struct ServerConfig {
  ListenAddress listen{"0.0.0.0", 8443};
  ListenAddress admin_listen{"127.0.0.1", 9090};
  unsigned io_threads = 0;  // 0: one per core
  std::chrono::milliseconds request_deadline{200};
  HttpLimits limits;
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds header_timeout{5000};
  std::chrono::milliseconds idle_timeout{60000};
  std::size_t max_connections = 10000;
  int fleet_size = 1;  // xksProxyFleetSize in GetHealthStatus
};

struct TlsConfig {
  std::string certificate_chain;          // PEM file
  std::string private_key;                // PEM file
  std::string client_ca;                  // PEM file; set = mTLS required
  std::vector<std::string> client_names;  // allowed CN or DNS SAN of client certificates
};

struct HsmConfig {
  std::string module;
  hsm::VendorProfile profile;
  hsm::TokenSelector token;
  hsm::PinSource pin;
  std::size_t sessions = 8;
  std::size_t workers = 0;  // HSM executor threads; 0: one per core (measured best for SoftHSM)
  std::string health_key;
};

struct CredentialConfig {
  sigv4::Credential credential;
  std::optional<std::chrono::sys_seconds> created;  // for the credential-age metric
};

struct KeyStoreConfig {
  std::string prefix;  // "" or "/a[/b...]"; prefix + "/kms/xks/v1" is the XksProxyUriPath
  std::vector<std::string> regions;
  std::vector<CredentialConfig> credentials;
  std::optional<std::vector<std::string>> allowed_keys;  // absent: every key on the token
};

struct AuditConfig {
  std::string path;  // "" off, "-" standard output, else a file appended to
  enum class OnFull { kDrop, kReject } on_full = OnFull::kDrop;
  std::size_t queue_size = 65536;
};

struct LogConfig {
  bool json = false;           // operational log as JSON lines instead of text
  std::string level = "info";  // trace, debug, info, warn, error
};

struct Config {
  LogConfig log;
  AuditConfig audit;  // off unless [audit] path is set
  ServerConfig server;
  TlsConfig tls;
  HsmConfig hsm;
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
