// kms-console.json and scenario files: what is accepted, and every refusal named.
#include "run_inputs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace xks::load {
namespace {

TEST(KmsConsole, ReadsWhatTheProxyWrites) {
  auto settings = parse_kms_console(
      R"({"XksProxyUriPath":"/example/kms/xks/v1","XksProxyAuthenticationCredential":)"
      R"({"AccessKeyId":"AKIA0123456789ABCDEF","RawSecretAccessKey":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}})");
  ASSERT_TRUE(settings) << settings.error();
  EXPECT_EQ(settings->uri_prefix, "/example");
  EXPECT_EQ(settings->access_key_id, "AKIA0123456789ABCDEF");
  EXPECT_EQ(settings->secret_access_key, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0");
  EXPECT_TRUE(settings->endpoint_host.empty());
}

TEST(KmsConsole, TakesTheEndpointWhenPresent) {
  auto settings = parse_kms_console(
      R"({"XksProxyUriEndpoint":"https://xks.example.com","XksProxyUriPath":"/a/kms/xks/v1",)"
      R"("XksProxyAuthenticationCredential":{"AccessKeyId":"A","RawSecretAccessKey":"S"}})");
  ASSERT_TRUE(settings) << settings.error();
  EXPECT_EQ(settings->endpoint_host, "xks.example.com");
  EXPECT_EQ(settings->endpoint_port, "443");
  settings = parse_kms_console(
      R"({"XksProxyUriEndpoint":"https://10.0.0.5:8443/","XksProxyUriPath":"/a/kms/xks/v1",)"
      R"("XksProxyAuthenticationCredential":{"AccessKeyId":"A","RawSecretAccessKey":"S"}})");
  ASSERT_TRUE(settings) << settings.error();
  EXPECT_EQ(settings->endpoint_host, "10.0.0.5");
  EXPECT_EQ(settings->endpoint_port, "8443");
}

TEST(KmsConsole, RefusalsAreNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"{", "not JSON"},
      {"[]", "expected an object"},
      {R"({"XksProxyUriPath":"/a/kms/xks/v1"})", "XksProxyAuthenticationCredential"},
      {R"({"XksProxyUriPath":"/a/v1","XksProxyAuthenticationCredential":{}})",
       "/<prefix>/kms/xks/v1"},
      {R"({"XksProxyUriPath":"/a/kms/xks/v1","XksProxyAuthenticationCredential":{"AccessKeyId":"A"}})",
       "RawSecretAccessKey"},
      {R"({"XksProxyUriEndpoint":"http://x","XksProxyUriPath":"/a/kms/xks/v1",)"
       R"("XksProxyAuthenticationCredential":{"AccessKeyId":"A","RawSecretAccessKey":"S"}})",
       "https://"},
  };
  for (const auto& [json, message] : cases) {
    auto settings = parse_kms_console(json);
    ASSERT_FALSE(settings) << json;
    EXPECT_NE(settings.error().find(message), std::string::npos) << settings.error();
  }
}

TEST(Scenario, PhasesWithFaultLines) {
  auto phases = parse_scenario(R"(
[[phase]]
name = "baseline"
seconds = 5

[[phase]]
name = "outage"
seconds = 2.5
faults = ["fail C_Encrypt CKR_DEVICE_REMOVED every 1", "fail C_OpenSession CKR_DEVICE_REMOVED every 1"]
)");
  ASSERT_TRUE(phases) << phases.error();
  ASSERT_EQ(phases->size(), 2u);
  EXPECT_EQ((*phases)[0].name, "baseline");
  EXPECT_TRUE((*phases)[0].faults.empty());
  EXPECT_DOUBLE_EQ((*phases)[1].seconds, 2.5);
  EXPECT_EQ((*phases)[1].faults.size(), 2u);
}

TEST(Scenario, TheShippedScenariosParse) {
  for (const auto& entry : std::filesystem::directory_iterator(XKS_SCENARIO_DIR)) {
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto phases = parse_scenario(text.str());
    EXPECT_TRUE(phases) << entry.path() << ": " << phases.error();
  }
}

TEST(Scenario, RefusalsAreNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"[[phase]\n", "scenario line 1"},
      {"", "no [[phase]]"},
      {"seconds = 1\n", "unknown key seconds"},
      {"[[phase]]\nseconds = 1\n", "name is required"},
      {"[[phase]]\nname = \"a\"\n", "seconds must be in (0, 3600]"},
      {"[[phase]]\nname = \"a\"\nseconds = -1\n", "seconds must be in (0, 3600]"},
      {"[[phase]]\nname = \"a\"\nseconds = 1\nfaults = [1]\n", "one-line strings"},
      {"[[phase]]\nname = \"a\"\nseconds = 1\ncolour = \"red\"\n",
       "unknown or mistyped key colour"},
      {"[[phase]]\nname = \"a\"\nseconds = 3000\n[[phase]]\nname = \"b\"\nseconds = 3000\n",
       "more than 3600 s"},
  };
  for (const auto& [toml, message] : cases) {
    auto phases = parse_scenario(toml);
    ASSERT_FALSE(phases) << toml;
    EXPECT_NE(phases.error().find(message), std::string::npos) << phases.error();
  }
}

}  // namespace
}  // namespace xks::load
