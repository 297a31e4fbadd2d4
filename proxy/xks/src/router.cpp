// Request path routing.
#include "xks/proxy/xks/router.h"

#include <algorithm>

namespace xks::proxy {

namespace {

constexpr std::string_view kApiRoot = "/kms/xks/v1/";

bool is_key_id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// "health" or "keys/<id>/<operation>".
std::optional<Route> parse_api_path(std::string_view rest) {
  if (rest == wire::uri_name(wire::Operation::kGetHealthStatus))
    return Route{0, wire::Operation::kGetHealthStatus, {}};
  if (!rest.starts_with("keys/"))
    return std::nullopt;
  rest.remove_prefix(5);
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos)
    return std::nullopt;
  std::string_view key_id = rest.substr(0, slash);
  std::string_view operation = rest.substr(slash + 1);
  // "." and ".." are dot segments: no client can sign a path that keeps them.
  if (key_id.empty() || key_id.size() > kMaxKeyIdLength || key_id == "." || key_id == ".." ||
      !std::all_of(key_id.begin(), key_id.end(), is_key_id_char)) {
    return std::nullopt;
  }
  auto named = wire::operation_from_uri_name(operation);
  if (!named || *named == wire::Operation::kGetHealthStatus)
    return std::nullopt;
  return Route{0, *named, key_id};
}

}  // namespace

std::optional<Route> route(std::string_view target, std::span<const std::string> prefixes) {
  // KMS never sends a query string; a path that carries one is not an XKS URI.
  if (target.size() > kMaxUriLength || target.find('?') != std::string_view::npos) {
    return std::nullopt;
  }
  std::optional<Route> best;
  std::size_t best_length = 0;
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    const std::string& prefix = prefixes[i];
    if (!target.starts_with(prefix) || target.substr(prefix.size()).find(kApiRoot) != 0)
      continue;
    if (best && prefix.size() < best_length)
      continue;
    auto parsed = parse_api_path(target.substr(prefix.size() + kApiRoot.size()));
    if (!parsed)
      continue;
    parsed->keystore = i;
    best = parsed;
    best_length = prefix.size();
  }
  return best;
}

}  // namespace xks::proxy
