// The XKS errors: each with its spec errorName and status, and a compact error body whose
// message the spec limits to fewer than 512 printable ASCII characters.
#include "xks/wire/error.h"

#include <gtest/gtest.h>

#include <set>

namespace xks::wire {
namespace {

TEST(XksErrorTest, EachErrorHasItsOwnNameAndTheSpecStatus) {
  struct Case {
    XksError error;
    std::string_view name;
    int status;
  };
  const Case cases[] = {
      {XksError::kValidation, "ValidationException", 400},
      {XksError::kInvalidState, "InvalidStateException", 400},
      {XksError::kInvalidCiphertext, "InvalidCiphertextException", 400},
      {XksError::kInvalidKeyUsage, "InvalidKeyUsageException", 400},
      {XksError::kAuthenticationFailed, "AuthenticationFailedException", 401},
      {XksError::kAccessDenied, "AccessDeniedException", 403},
      {XksError::kKeyNotFound, "KeyNotFoundException", 404},
      {XksError::kInvalidUriPath, "InvalidUriPathException", 404},
      {XksError::kMethodNotAllowed, "MethodNotAllowedException", 405},
      {XksError::kThrottling, "ThrottlingException", 429},
      {XksError::kInternal, "InternalException", 500},
      {XksError::kUnsupportedOperation, "UnsupportedOperationException", 501},
      {XksError::kDependencyTimeout, "DependencyTimeoutException", 503},
  };
  static_assert(std::size(cases) == kXksErrorCount);
  std::set<std::string_view> names;
  for (const Case& expected : cases) {
    EXPECT_EQ(error_name(expected.error), expected.name);
    EXPECT_EQ(http_status(expected.error), expected.status) << expected.name;
    names.insert(error_name(expected.error));
  }
  EXPECT_EQ(names.size(), kXksErrorCount);
}

TEST(XksErrorTest, BodyIsCompactJsonWithAnEscapedPrintableMessage) {
  EXPECT_EQ(error_body(XksError::kKeyNotFound, "no such key"),
            R"({"errorName":"KeyNotFoundException","errorMessage":"no such key"})");
  EXPECT_EQ(error_body(XksError::kValidation, "a \"quoted\" \\ path\n\xff"),
            R"({"errorName":"ValidationException","errorMessage":"a \"quoted\" \\ path??"})");
}

TEST(XksErrorTest, MessageIsCutBelow512CharactersWithoutSplittingAnEscape) {
  const std::string prefix = R"({"errorName":"InternalException","errorMessage":")";
  std::string body = error_body(XksError::kInternal, std::string(2000, 'x'));
  EXPECT_EQ(body, prefix + std::string(511, 'x') + "\"}");
  // A quote that would be the 511th and 512th written characters is left out whole.
  body = error_body(XksError::kInternal, std::string(510, 'x') + "\"tail");
  EXPECT_EQ(body, prefix + std::string(510, 'x') + "\"}");
}

}  // namespace
}  // namespace xks::wire
