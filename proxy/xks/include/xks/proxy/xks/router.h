// Which key store and XKS operation a request path names (spec "API operations"):
//   <prefix>/kms/xks/v1/health
//   <prefix>/kms/xks/v1/keys/<externalKeyId>/{metadata,encrypt,decrypt}
// Anything else is InvalidUriPathException, decided before authentication.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "xks/wire/operation.h"

namespace xks::proxy {

struct Route {
  std::size_t keystore = 0;  // index into the prefixes given to route()
  wire::Operation operation = wire::Operation::kGetHealthStatus;
  std::string_view key_id;  // empty for health
};

inline constexpr std::size_t kMaxUriLength = 256;
inline constexpr std::size_t kMaxKeyIdLength = 128;

// `target` is the request target as sent (path and optional query); `prefixes` are the key
// stores' URI prefixes ("" or "/name[/name...]"). The longest matching prefix wins.
std::optional<Route> route(std::string_view target, std::span<const std::string> prefixes);

}  // namespace xks::proxy
