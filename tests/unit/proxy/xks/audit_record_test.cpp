// An XKS request's audit fields: every field in a fixed order, values escaped for JSON, and the
// writer's chain appended after them (the line is valid JSON).
#include "xks/proxy/xks/audit_record.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <vector>

#include "xks/proxy/ops/audit_chain.h"

namespace xks::proxy {
namespace {

TEST(AuditRecordTest, FieldsComeInAFixedOrderAndEscaped) {
  AuditRecord record;
  record.time =
      std::chrono::system_clock::time_point(std::chrono::microseconds(1'764'410'400'000'001));
  record.metadata.kms_request_id = "id \"quoted\"\n";
  record.metadata.aws_principal_arn = "arn:aws:iam::123456789012:user/Alice";
  record.keystore = "/tenant-a";
  record.key_id = "foo";
  record.operation = "Encrypt";
  record.outcome = "error";
  record.error_name = "InvalidKeyUsageException";
  record.status = 400;
  record.latency_us = 1234;
  record.client_address = "[2001:db8::1]:51234";
  AuditChain chain(nullptr);
  std::string line = chain.line(audit_fields(record));
  auto parsed = boost::json::parse(line).as_object();
  std::vector<std::string> names;
  for (const auto& field : parsed)
    names.emplace_back(field.key());
  const std::vector<std::string> expected = {
      "time",          "kmsRequestId",    "keystore",  "externalKeyId", "operation",
      "kmsOperation",  "awsPrincipalArn", "kmsKeyArn", "kmsViaService", "awsSourceVpc",
      "awsSourceVpce", "outcome",         "errorName", "status",        "latencyUs",
      "hsm",           "clientSubject",   "client",    "seq",           "prev",
      "chain"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(parsed.at("time").as_string(), "2025-11-29T10:00:00.000001Z");
  EXPECT_EQ(parsed.at("kmsRequestId").as_string(), "id \"quoted\"\n");
  EXPECT_EQ(parsed.at("status").as_int64(), 400);
  EXPECT_EQ(parsed.at("client").as_string(), "[2001:db8::1]:51234");
  EXPECT_EQ(parsed.at("seq").as_int64(), 1);
  EXPECT_EQ(parsed.at("chain").as_string(), chain.head().chain);
}

}  // namespace
}  // namespace xks::proxy
