// Strict parser for the SigV4 Authorization header:
//   AWS4-HMAC-SHA256 Credential=<akid>/<yyyymmdd>/<region>/<service>/aws4_request,
//   SignedHeaders=<h1;h2;...>, Signature=<64 lower-case hex>
#pragma once

#include <string_view>
#include <tl/expected.hpp>

#include "xks/sigv4/failure.h"

namespace xks::sigv4 {

// Views into the parsed header value.
struct Authorization {
  std::string_view access_key_id;
  std::string_view date;  // yyyymmdd, a valid calendar day
  std::string_view region;
  std::string_view service;
  std::string_view signed_headers;  // lower-case, strictly ascending, ';'-separated
  std::string_view signature;       // 64 lower-case hex digits
};

tl::expected<Authorization, Failure> parse_authorization(std::string_view value);

}  // namespace xks::sigv4
