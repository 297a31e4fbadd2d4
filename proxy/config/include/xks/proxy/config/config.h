// The proxy's configuration: one TOML file, parsed strictly into immutable values. An unknown
// key or a bad value fails with "<file>:<line>: <key>: <problem>". Secrets (SigV4 secrets, the
// HSM PIN) are never inline: they come from files or environment variables.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
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
  std::string name;        // metrics label and ekmFleetDetails id; default: the token's serial
  hsm::ModuleSpec module;  // module (path) and init_reserved
  hsm::VendorProfile profile;
  hsm::TokenSelector token;
  hsm::PinSource pin;
  std::size_t sessions = 8;  // default: the vendor profile's (8 for SoftHSM, 32 otherwise)
  std::size_t workers = 0;   // HSM executor threads; 0: sized from sessions (see VendorProfile)
  std::string health_key;
  hsm::CircuitBreakerOptions circuit_breaker;  // [hsm.circuit_breaker]

  bool operator==(const HsmConfig&) const = default;
};

struct CredentialConfig {
  sigv4::Credential credential;
  std::optional<std::chrono::sys_seconds> created;  // for the credential-age metric
  std::string secret_env;   // the variable the secret came from, if not a file
  std::string secret_file;  // the file it came from, if not a variable
};

// A secondary authorization rule ([[keystore.rule]], README "Access control"). Each condition
// is a list of patterns matched against one field of the request (`*`: any run of characters,
// `?`: one character; "" matches a field the request does not carry); an absent list matches
// any request. A rule applies when every condition it has matches.
struct AuthorizationRule {
  std::string id;     // [A-Za-z0-9._-], unique in its key store: metric label and audit field
  bool deny = false;  // effect = "deny" (else "allow")
  std::vector<std::string> operations;  // Encrypt | Decrypt | GetKeyMetadata, exact
  std::vector<std::string> key_ids;
  std::vector<std::string> kms_operations;  // requestMetadata.kmsOperation
  std::vector<std::string> principals;      // requestMetadata.awsPrincipalArn
  std::vector<std::string> kms_key_arns;    // requestMetadata.kmsKeyArn
  std::vector<std::string> via_services;    // requestMetadata.kmsViaService
  std::vector<std::string> source_vpcs;     // requestMetadata.awsSourceVpc
  std::vector<std::string> source_vpces;    // requestMetadata.awsSourceVpce
};

// [keystore.quota]: token buckets, refilled continuously; a request that finds its bucket
// empty is answered 429 ThrottlingException before any HSM work.
struct QuotaConfig {
  double requests_per_second = 0;      // the key store's; 0: none
  double burst = 0;                    // bucket size; default: requests_per_second (at least 1)
  double key_requests_per_second = 0;  // per_key_requests_per_second: each key's; 0: none
  double key_burst = 0;                // per_key_burst

  bool operator==(const QuotaConfig&) const = default;
};

// The owner's kill switch: while blocked, every key operation of the key store is refused.
struct BlockConfig {
  bool blocked = false;
  std::string by;      // blocked_by: who (written by `xks-proxy keystore block`)
  std::string reason;  // blocked_reason
  std::optional<std::chrono::sys_seconds> at;  // blocked_at

  bool operator==(const BlockConfig&) const = default;
};

struct KeyStoreConfig {
  std::string prefix;  // "" or "/a[/b...]"; prefix + "/kms/xks/v1" is the XksProxyUriPath
  std::vector<std::string> regions;
  std::vector<CredentialConfig> credentials;
  // The external key ids served, exact or patterns as in AuthorizationRule; none listed: no
  // key is served. An HSM's health key is never served.
  std::vector<std::string> keys;
  std::vector<AuthorizationRule> rules;  // in file order
  QuotaConfig quota;
  BlockConfig block;
  // Serve keys the HSM would let out in the clear (CKA_EXTRACTABLE true or CKA_SENSITIVE
  // false); by default they answer InvalidStateException.
  bool allow_unprotected_keys = false;
  // [keystore.aws_sample_proxy]: Decrypt also opens ciphertexts AWS's sample XKS proxy made with
  // these keys (its AAD digest scheme), recognised by the ciphertextMetadata it was configured
  // with (`ciphertext_metadata`, base64; absent: none). Encrypt is unchanged.
  std::optional<std::vector<std::uint8_t>> aws_sample_metadata;
};

struct Config {
  LogConfig log;
  AuditConfig audit;  // off unless [audit] path is set
  ServerConfig server;
  TlsConfig tls;
  std::vector<HsmConfig> hsm;  // one, or a fleet (each named)
  std::vector<KeyStoreConfig> keystores;
};

// Where the values of secret_env and pin_env variables come from; empty: the process
// environment. (A reload passes the values read at start: serve scrubs the variables.)
using EnvironmentLookup = std::function<std::optional<std::string>(const std::string& name)>;

tl::expected<Config, std::string> load_config(const std::string& path,
                                              const EnvironmentLookup& environment = {});
// Only the [server] section, as load_config reads it (for commands that talk to a running
// proxy's admin listener).
tl::expected<ServerConfig, std::string> load_server_config(const std::string& path);
// The same as load_config from text in memory; `source` names it in errors (the fuzz target's
// entry).
tl::expected<Config, std::string> parse_config(std::string_view text, const std::string& source);

// Spec format rules, shared with the credential generator.
bool is_valid_access_key_id(std::string_view id);  // 20-30 of [A-Z2-7]
bool is_valid_secret(std::string_view secret);     // 43-64 of [A-Za-z0-9+/=]
bool is_valid_uri_prefix(std::string_view prefix);

}  // namespace xks::proxy
