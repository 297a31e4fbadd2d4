// Strict Authorization header parser. Every component must appear exactly once; anything
// unexpected is a failure, never a guess.
#include "xks/sigv4/authorization.h"

#include <optional>

#include "text.h"
#include "xks/sigv4/canonical.h"

namespace xks::sigv4 {

namespace {

using namespace detail;

constexpr std::size_t kMaxAccessKeyIdLength = 128;
constexpr std::size_t kMaxScopeFieldLength = 64;

// <akid>/<yyyymmdd>/<region>/<service>/aws4_request
bool parse_credential(std::string_view value, Authorization& out) {
  auto next_field = [&value] {
    std::size_t slash = value.find('/');
    std::string_view field = value.substr(0, slash);
    value.remove_prefix(slash == std::string_view::npos ? value.size() : slash + 1);
    return field;
  };
  out.access_key_id = next_field();
  out.date = next_field();
  out.region = next_field();
  out.service = next_field();
  auto scope_field_ok = [](std::string_view field) {
    return !field.empty() && field.size() <= kMaxScopeFieldLength &&
           all_of(field, [](char c) { return is_lower(c) || is_digit(c) || c == '-'; });
  };
  bool access_key_id_ok =
      !out.access_key_id.empty() && out.access_key_id.size() <= kMaxAccessKeyIdLength &&
      all_of(out.access_key_id, [](char c) { return is_upper(c) || is_lower(c) || is_digit(c); });
  return access_key_id_ok && parse_day(out.date) && scope_field_ok(out.region) &&
         scope_field_ok(out.service) && value == "aws4_request";
}

// RFC 9110 token characters, lower case only: SignedHeaders lists canonical (lower-case) names.
constexpr bool is_header_name_char(char c) {
  return is_lower(c) || is_digit(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Lower-case names, strictly ascending (so sorted and unique), separated by single ';'.
bool is_signed_headers(std::string_view list) {
  std::optional<std::string_view> previous;
  while (true) {
    std::size_t semicolon = list.find(';');
    std::string_view name = list.substr(0, semicolon);
    if (name.empty() || !all_of(name, is_header_name_char))
      return false;
    if (previous && !(*previous < name))
      return false;
    previous = name;
    if (semicolon == std::string_view::npos)
      return true;
    list.remove_prefix(semicolon + 1);
  }
}

}  // namespace

tl::expected<Authorization, Failure> parse_authorization(std::string_view value) {
  value = trim(value);
  std::size_t space = value.find(' ');
  if (value.substr(0, space) != kAlgorithm)
    return tl::unexpected(Failure::kUnsupportedAlgorithm);
  if (space == std::string_view::npos)
    return tl::unexpected(Failure::kMalformedAuthorization);
  std::string_view rest = value.substr(space + 1);

  // Components are separated by ',' and optional spaces, in any order (as AWS accepts them).
  std::optional<std::string_view> credential, signed_headers, signature;
  while (true) {
    std::size_t comma = rest.find(',');
    std::string_view component = rest.substr(0, comma);
    std::size_t equals = component.find('=');
    if (equals == std::string_view::npos)
      return tl::unexpected(Failure::kMalformedAuthorization);
    std::string_view name = component.substr(0, equals);
    std::optional<std::string_view>* slot = name == "Credential"      ? &credential
                                            : name == "SignedHeaders" ? &signed_headers
                                            : name == "Signature"     ? &signature
                                                                      : nullptr;
    if (slot == nullptr || slot->has_value()) {
      return tl::unexpected(Failure::kMalformedAuthorization);
    }
    *slot = component.substr(equals + 1);
    if (comma == std::string_view::npos)
      break;
    rest.remove_prefix(comma + 1);
    while (rest.starts_with(' '))
      rest.remove_prefix(1);
  }
  if (!credential || !signed_headers || !signature) {
    return tl::unexpected(Failure::kMalformedAuthorization);
  }

  Authorization out;
  if (!parse_credential(*credential, out))
    return tl::unexpected(Failure::kMalformedCredential);
  if (!is_signed_headers(*signed_headers)) {
    return tl::unexpected(Failure::kMalformedSignedHeaders);
  }
  out.signed_headers = *signed_headers;
  if (signature->size() != 64 || !all_of(*signature, is_lower_hex)) {
    return tl::unexpected(Failure::kMalformedSignature);
  }
  out.signature = *signature;
  return out;
}

}  // namespace xks::sigv4
