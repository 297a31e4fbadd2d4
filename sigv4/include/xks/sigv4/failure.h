// Why a request failed SigV4 verification. For logs and metrics only: every failure is
// answered with the same 401 AuthenticationFailedException so that clients learn nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xks::sigv4 {

enum class Failure : std::uint8_t {
  kMissingAuthorization,    // no Authorization header
  kDuplicateAuthorization,  // more than one Authorization header
  kUnsupportedAlgorithm,    // not AWS4-HMAC-SHA256
  kMalformedAuthorization,  // components missing, repeated, unknown or badly separated
  kMalformedCredential,     // Credential is not <akid>/<yyyymmdd>/<region>/<service>/aws4_request
  kMalformedSignedHeaders,  // not lower-case, sorted, unique, ';'-separated names
  kMalformedSignature,      // not 64 lower-case hex digits
  kWrongService,            // scope service is not the one this verifier serves
  kUnknownAccessKeyId,      // no credential with that access key id
  kRegionNotAllowed,        // scope region outside the key store's allowed set
  kHostNotSigned,           // SigV4 requires host among the signed headers
  kDateNotSigned,           // x-amz-date carries the request time and must be signed
  kMissingDate,             // no X-Amz-Date header, or more than one
  kMalformedDate,           // X-Amz-Date is not yyyymmddThhmmssZ
  kScopeDateMismatch,       // credential scope day differs from the X-Amz-Date day
  kClockSkew,               // X-Amz-Date more than the allowed skew from now
  kSignedHeaderMissing,     // a header named in SignedHeaders is absent
  kSignatureMismatch,       // everything parsed, but the signature is wrong (keep last)
};
inline constexpr std::size_t kFailureCount =
    static_cast<std::size_t>(Failure::kSignatureMismatch) + 1;

// A stable snake_case name, usable as a metric label value.
std::string_view failure_name(Failure failure);

}  // namespace xks::sigv4
