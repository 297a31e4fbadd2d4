// The XKS operations' two names: the spec's (metrics, audit, kmsOperation-style) and the URI
// segment the router and xks-load's --mix use; each name maps back to its operation.
#include "xks/wire/operation.h"

#include <gtest/gtest.h>

namespace xks::wire {
namespace {

TEST(OperationTest, EachOperationHasItsSpecAndUriName) {
  EXPECT_EQ(operation_name(Operation::kGetKeyMetadata), "GetKeyMetadata");
  EXPECT_EQ(operation_name(Operation::kEncrypt), "Encrypt");
  EXPECT_EQ(operation_name(Operation::kDecrypt), "Decrypt");
  EXPECT_EQ(operation_name(Operation::kGetHealthStatus), "GetHealthStatus");
  EXPECT_EQ(uri_name(Operation::kGetKeyMetadata), "metadata");
  EXPECT_EQ(uri_name(Operation::kGetHealthStatus), "health");
  for (Operation operation : kOperations)
    EXPECT_EQ(operation_from_uri_name(uri_name(operation)), operation);
  EXPECT_FALSE(operation_from_uri_name("Encrypt").has_value());
  EXPECT_FALSE(operation_from_uri_name("").has_value());
}

}  // namespace
}  // namespace xks::wire
