// The requestMetadata every XKS request carries (spec appendix B): for the audit log and
// authorization, never validated beyond its presence.
#pragma once

#include <string>

namespace xks::proxy {

struct RequestMetadata {
  std::string aws_principal_arn;
  std::string kms_key_arn;
  std::string kms_operation;
  std::string kms_request_id;
  std::string kms_via_service;
  std::string aws_source_vpc;
  std::string aws_source_vpce;
};

}  // namespace xks::proxy
