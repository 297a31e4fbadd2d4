// SigV4 canonicalisation: the canonical request, the credential scope and the string to sign,
// exactly as AWS's "Create a signed AWS API request" guide and botocore build them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "xks/sigv4/failure.h"
#include "xks/sigv4/request.h"

namespace xks::sigv4 {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

// Sorted "name=value" pairs joined by '&', kept as sent (they are not re-encoded).
std::string canonical_query(std::string_view raw_query);

// Trims a header value and collapses each inner run of whitespace into one space.
std::string canonical_header_value(std::string_view value);

// The canonical request for `signed_headers` (lower-case names, sorted, ';'-joined, as in the
// Authorization header). Repeated headers are joined with ','. Fails with
// kSignedHeaderMissing if a signed header is absent from the request.
tl::expected<std::string, Failure> canonical_request(const Request& request,
                                                     std::string_view signed_headers);

// "<yyyymmdd>/<region>/<service>/aws4_request"
std::string credential_scope(std::string_view date, std::string_view region,
                             std::string_view service);

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);

// X-Amz-Date is "yyyymmddThhmmssZ" in UTC; parsing rejects anything else, including
// impossible dates and times.
std::string format_amz_date(std::chrono::system_clock::time_point time);
std::optional<std::chrono::sys_seconds> parse_amz_date(std::string_view amz_date);

// Lower-case hex SHA-256, the payload hash of the canonical request.
std::string sha256_hex(std::string_view data);

}  // namespace xks::sigv4
