// requestMetadata's members, by the spec: kmsRequestId and kmsOperation always, awsPrincipalArn
// whenever a key is named, kmsKeyArn for Encrypt and Decrypt, the rest optional.
#include "xks/wire/request_metadata.h"

#include <gtest/gtest.h>

#include <set>

namespace xks::wire {
namespace {

std::set<std::string_view> required_names(Operation operation) {
  std::set<std::string_view> names;
  for (const RequestMetadataField& field : kRequestMetadataFields) {
    if (field.required_for(operation))
      names.insert(field.name);
  }
  return names;
}

TEST(RequestMetadataTest, EachOperationRequiresWhatTheSpecRequires) {
  using Names = std::set<std::string_view>;
  EXPECT_EQ(required_names(Operation::kGetHealthStatus), (Names{"kmsRequestId", "kmsOperation"}));
  EXPECT_EQ(required_names(Operation::kGetKeyMetadata),
            (Names{"kmsRequestId", "kmsOperation", "awsPrincipalArn"}));
  for (Operation operation : {Operation::kEncrypt, Operation::kDecrypt}) {
    EXPECT_EQ(required_names(operation),
              (Names{"kmsRequestId", "kmsOperation", "awsPrincipalArn", "kmsKeyArn"}));
  }
}

TEST(RequestMetadataTest, EveryFieldHasItsOwnMember) {
  RequestMetadata metadata;
  for (const RequestMetadataField& field : kRequestMetadataFields)
    metadata.*field.member = std::string(field.name);
  EXPECT_EQ(metadata.aws_principal_arn, "awsPrincipalArn");
  EXPECT_EQ(metadata.kms_key_arn, "kmsKeyArn");
  EXPECT_EQ(metadata.kms_operation, "kmsOperation");
  EXPECT_EQ(metadata.kms_request_id, "kmsRequestId");
  EXPECT_EQ(metadata.kms_via_service, "kmsViaService");
  EXPECT_EQ(metadata.aws_source_vpc, "awsSourceVpc");
  EXPECT_EQ(metadata.aws_source_vpce, "awsSourceVpce");
}

}  // namespace
}  // namespace xks::wire
