// The files xks-load reads besides its flags: the KMS console's proxy settings
// (kms-console.json, as `xks-proxy demo` and `xks-proxy credentials new` write it) and an
// availability scenario (TOML phases, each with the fault module's control lines).
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace xks::load {

struct KmsConsoleSettings {
  std::string uri_prefix;  // XksProxyUriPath without the trailing /kms/xks/v1
  std::string access_key_id;
  std::string secret_access_key;
  std::string endpoint_host;  // from XksProxyUriEndpoint when present, else empty
  std::string endpoint_port;
};

tl::expected<KmsConsoleSettings, std::string> parse_kms_console(std::string_view json);

struct Phase {
  std::string name;
  double seconds = 0;
  std::vector<std::string> faults;  // the fault module's control lines during this phase
};

tl::expected<std::vector<Phase>, std::string> parse_scenario(std::string_view toml);

}  // namespace xks::load
