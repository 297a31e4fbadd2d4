// Stable names for verification failures (metric label values, log fields).
#include "xks/sigv4/failure.h"

namespace xks::sigv4 {

std::string_view failure_name(Failure failure) {
  switch (failure) {
    case Failure::kMissingAuthorization:
      return "missing_authorization";
    case Failure::kDuplicateAuthorization:
      return "duplicate_authorization";
    case Failure::kUnsupportedAlgorithm:
      return "unsupported_algorithm";
    case Failure::kMalformedAuthorization:
      return "malformed_authorization";
    case Failure::kMalformedCredential:
      return "malformed_credential";
    case Failure::kMalformedSignedHeaders:
      return "malformed_signed_headers";
    case Failure::kMalformedSignature:
      return "malformed_signature";
    case Failure::kWrongService:
      return "wrong_service";
    case Failure::kUnknownAccessKeyId:
      return "unknown_access_key_id";
    case Failure::kRegionNotAllowed:
      return "region_not_allowed";
    case Failure::kHostNotSigned:
      return "host_not_signed";
    case Failure::kDateNotSigned:
      return "date_not_signed";
    case Failure::kMissingDate:
      return "missing_date";
    case Failure::kMalformedDate:
      return "malformed_date";
    case Failure::kScopeDateMismatch:
      return "scope_date_mismatch";
    case Failure::kClockSkew:
      return "clock_skew";
    case Failure::kSignedHeaderMissing:
      return "signed_header_missing";
    case Failure::kSignatureMismatch:
      return "signature_mismatch";
  }
  return "unknown";
}

}  // namespace xks::sigv4
