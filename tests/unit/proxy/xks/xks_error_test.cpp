// Refusals the transport makes before a request reaches the XKS handlers are answered here, in
// one place: each with its HTTP status and errorName, as a compact JSON error body.
#include "xks/proxy/xks/xks_error.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace xks::proxy {
namespace {

TEST(RefusalAnswerTest, EachRefusalHasItsStatusAndErrorName) {
  struct Case {
    HttpRefusal reason;
    int status;
    const char* error_name;
  };
  const Case cases[] = {
      {HttpRefusal::kMalformed, 400, "ValidationException"},
      {HttpRefusal::kHeaderBytes, 400, "ValidationException"},
      {HttpRefusal::kBodyBytes, 400, "ValidationException"},
      {HttpRefusal::kFramingBytes, 400, "ValidationException"},
      {HttpRefusal::kConnectionBufferBytes, 429, "ThrottlingException"},
      {HttpRefusal::kStreamsInFlight, 429, "ThrottlingException"},
      {HttpRefusal::kRequestTimeout, 400, "ValidationException"},
      {HttpRefusal::kResetFlood, 400, "ValidationException"},
  };
  static_assert(std::size(cases) == kHttpRefusalCount);
  for (const Case& expected : cases) {
    auto [error, message] = refusal_error(expected.reason);
    HttpResponse answer = error_response(error, message);
    EXPECT_EQ(answer.status, expected.status) << refusal_name(expected.reason);
    auto body = boost::json::parse(answer.body).as_object();
    EXPECT_EQ(body.at("errorName").as_string(), expected.error_name);
    EXPECT_FALSE(body.at("errorMessage").as_string().empty());
    // Compact, one line, no space after a colon (XKS_REQUIREMENTS 5).
    EXPECT_EQ(answer.body.find("\": "), std::string::npos) << answer.body;
    EXPECT_EQ(answer.body.find('\n'), std::string::npos) << answer.body;
  }
}

}  // namespace
}  // namespace xks::proxy
