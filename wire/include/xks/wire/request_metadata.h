// The requestMetadata every XKS request carries (spec "Request Metadata" and each API's
// section): for authorization and the audit log, never validated beyond presence and type.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "xks/wire/operation.h"

namespace xks::wire {

struct RequestMetadata {
  std::string aws_principal_arn;
  std::string kms_key_arn;
  std::string kms_operation;
  std::string kms_request_id;
  std::string kms_via_service;
  std::string aws_source_vpc;
  std::string aws_source_vpce;
};

// One requestMetadata member: its JSON name in the spec, where it is kept, and which
// operations must carry it.
struct RequestMetadataField {
  std::string_view name;
  std::string RequestMetadata::*member;
  enum class Required : std::uint8_t { kAlways, kForKeys, kForCryptography, kNever } required;

  bool required_for(Operation operation) const {
    switch (required) {
      case Required::kAlways:
        return true;
      case Required::kForKeys:  // every API but GetHealthStatus names a key
        return operation != Operation::kGetHealthStatus;
      case Required::kForCryptography:
        return operation == Operation::kEncrypt || operation == Operation::kDecrypt;
      case Required::kNever:
        return false;
    }
    return false;
  }
};

inline constexpr std::array<RequestMetadataField, 7> kRequestMetadataFields = {{
    {"kmsRequestId", &RequestMetadata::kms_request_id, RequestMetadataField::Required::kAlways},
    {"kmsOperation", &RequestMetadata::kms_operation, RequestMetadataField::Required::kAlways},
    {"awsPrincipalArn", &RequestMetadata::aws_principal_arn,
     RequestMetadataField::Required::kForKeys},
    {"kmsKeyArn", &RequestMetadata::kms_key_arn, RequestMetadataField::Required::kForCryptography},
    {"kmsViaService", &RequestMetadata::kms_via_service, RequestMetadataField::Required::kNever},
    {"awsSourceVpc", &RequestMetadata::aws_source_vpc, RequestMetadataField::Required::kNever},
    {"awsSourceVpce", &RequestMetadata::aws_source_vpce, RequestMetadataField::Required::kNever},
}};

}  // namespace xks::wire
