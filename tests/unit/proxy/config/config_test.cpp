// Strict configuration loading: a complete file, defaults, and errors that name file, line and
// key for every kind of mistake.
#include "xks/proxy/config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "xks/proxy/config/config_edit.h"

namespace xks::proxy {
namespace {

class ConfigTest : public testing::Test {
 protected:
  ConfigTest() {
    dir_ = std::filesystem::temp_directory_path() /
           ("xks-config-" + std::to_string(::getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "secret") << kSecret << "\n";
    std::filesystem::permissions(
        dir_ / "secret", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  ~ConfigTest() override { std::filesystem::remove_all(dir_); }

  tl::expected<Config, std::string> load(const std::string& text) {
    std::ofstream(dir_ / "xks.toml") << text;
    return load_config((dir_ / "xks.toml").string());
  }

  std::string secret_path() const { return (dir_ / "secret").string(); }

  std::string minimal(const std::string& keystore_extra = "", const std::string& hsm_extra = "") {
    return "[tls]\ncertificate_chain = \"/etc/xks/cert.pem\"\nprivate_key = \"/etc/xks/key.pem\"\n"
           "[hsm]\nmodule = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"xks\"\n"
           "pin_file = \"/etc/xks/pin\"\nhealth_key = \"xks-health\"\n" +
           hsm_extra + "[[keystore]]\nprefix = \"/example\"\nregions = [\"us-east-1\"]\n" +
           keystore_extra +
           "[[keystore.credential]]\naccess_key_id = \"AKIAXKSEXAMPLE234567\"\n"
           "secret_file = \"" +
           secret_path() + "\"\n";
  }

  void expect_error(const std::string& text, const std::string& expected) {
    auto config = load(text);
    ASSERT_FALSE(config.has_value()) << "accepted:\n" << text;
    EXPECT_NE(config.error().find(expected), std::string::npos)
        << "error: " << config.error() << "\nexpected to contain: " << expected;
    EXPECT_NE(config.error().find("xks.toml:"), std::string::npos) << config.error();
  }

  static constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY1234";
  std::filesystem::path dir_;
};

TEST_F(ConfigTest, AMinimalFileGetsTheDefaults) {
  auto config = load(minimal());
  ASSERT_TRUE(config.has_value()) << config.error();
  EXPECT_EQ(config->server.listen.host, "0.0.0.0");
  EXPECT_EQ(config->server.listen.port, 8443);
  EXPECT_EQ(config->server.admin_listen.host, "127.0.0.1");
  EXPECT_EQ(config->server.request_deadline, std::chrono::milliseconds(200));
  EXPECT_EQ(config->server.limits.max_header_bytes, 16384u);
  EXPECT_EQ(config->server.limits.max_body_bytes, 65536u);
  EXPECT_EQ(config->server.limits.http2_max_concurrent_streams, 128u);
  EXPECT_EQ(config->server.limits.http2_connection_buffer_bytes, 262144u);
  EXPECT_EQ(config->hsm[0].profile.name, "softhsm");
  EXPECT_EQ(config->hsm[0].token.by, hsm::TokenSelector::By::kLabel);
  EXPECT_EQ(config->hsm[0].pin.from, hsm::PinSource::From::kFile);
  ASSERT_EQ(config->keystores.size(), 1u);
  EXPECT_EQ(config->keystores[0].prefix, "/example");
  EXPECT_EQ(config->keystores[0].credentials[0].credential.secret_access_key, kSecret);
  // Keys are denied by default; no rules, no quota, not blocked.
  EXPECT_TRUE(config->keystores[0].keys.empty());
  EXPECT_TRUE(config->keystores[0].rules.empty());
  EXPECT_EQ(config->keystores[0].quota, QuotaConfig{});
  EXPECT_FALSE(config->keystores[0].block.blocked);
}

TEST_F(ConfigTest, SessionsDefaultToTheVendorProfiles) {
  auto softhsm = load(minimal());
  ASSERT_TRUE(softhsm.has_value()) << softhsm.error();
  EXPECT_EQ(softhsm->hsm[0].sessions, 8u);  // in-process: CPU-bound calls
  auto network = load(minimal("", "vendor_profile = \"luna\"\n"));
  ASSERT_TRUE(network.has_value()) << network.error();
  EXPECT_EQ(network->hsm[0].sessions, 32u);  // a network HSM: calls in flight during a spike
  EXPECT_EQ(network->hsm[0].workers, 0u);    // sized from the sessions at start
  auto chosen = load(minimal("", "vendor_profile = \"luna\"\nsessions = 4\n"));
  ASSERT_TRUE(chosen.has_value()) << chosen.error();
  EXPECT_EQ(chosen->hsm[0].sessions, 4u);
}

TEST_F(ConfigTest, ReadsTheCircuitBreakerAndChecksIt) {
  auto defaults = load(minimal());
  ASSERT_TRUE(defaults.has_value()) << defaults.error();
  EXPECT_EQ(defaults->hsm[0].circuit_breaker.consecutive_failures, 3u);
  auto tuned =
      load(minimal("",
                   "[hsm.circuit_breaker]\nconsecutive_failures = 3\nfailure_percent = 25\n"
                   "minimum_calls = 40\nwindow_ms = 5000\nopen_ms = 100\n"
                   "max_open_ms = 60000\n"));
  ASSERT_TRUE(tuned.has_value()) << tuned.error();
  const hsm::CircuitBreakerOptions& breaker = tuned->hsm[0].circuit_breaker;
  EXPECT_EQ(breaker.consecutive_failures, 3u);
  EXPECT_DOUBLE_EQ(breaker.failure_ratio, 0.25);
  EXPECT_EQ(breaker.minimum_calls, 40u);
  EXPECT_EQ(breaker.window, std::chrono::milliseconds(5000));
  EXPECT_EQ(breaker.open_for, std::chrono::milliseconds(100));
  EXPECT_EQ(breaker.max_open_for, std::chrono::milliseconds(60000));
  expect_error(minimal("", "[hsm.circuit_breaker]\nopen_ms = 500\nmax_open_ms = 100\n"),
               "hsm.circuit_breaker.max_open_ms: must be at least open_ms");
  expect_error(minimal("", "[hsm.circuit_breaker]\nfailure_percent = 0\n"),
               "hsm.circuit_breaker.failure_percent: must be between 1 and 100");
  expect_error(minimal("", "[hsm.circuit_breaker]\nopen = 1\n"),
               "hsm.circuit_breaker.open: unknown key");
}

TEST_F(ConfigTest, ReadsAFleetOfNamedHsms) {
  const std::string tls =
      "[tls]\ncertificate_chain = \"/etc/xks/cert.pem\"\nprivate_key = \"/etc/xks/key.pem\"\n";
  auto hsm = [](const std::string& name, const std::string& token) {
    return "[[hsm]]\n" + name + "module = \"/m.so\"\ntoken_label = \"" + token +
           "\"\npin_file = \"/p\"\nhealth_key = \"h\"\n";
  };
  const std::string store =
      "[[keystore]]\nprefix = \"/example\"\nregions = [\"us-east-1\"]\n"
      "[[keystore.credential]]\naccess_key_id = \"AKIAXKSEXAMPLE234567\"\nsecret_file = \"" +
      secret_path() + "\"\n";
  auto fleet = load(tls + hsm("name = \"east\"\n", "a") + "[hsm.circuit_breaker]\nopen_ms = 300\n" +
                    hsm("name = \"west\"\n", "b") + store);
  ASSERT_TRUE(fleet.has_value()) << fleet.error();
  ASSERT_EQ(fleet->hsm.size(), 2u);
  EXPECT_EQ(fleet->hsm[0].name, "east");
  EXPECT_EQ(fleet->hsm[0].circuit_breaker.open_for, std::chrono::milliseconds(300));
  EXPECT_EQ(fleet->hsm[1].name, "west");
  EXPECT_EQ(fleet->hsm[1].token.value, "b");
  EXPECT_EQ(fleet->hsm[1].circuit_breaker.open_for, std::chrono::milliseconds(200));
  expect_error(tls + hsm("name = \"east\"\n", "a") + hsm("", "b") + store,
               "each HSM of a fleet needs a name");
  expect_error(tls + hsm("name = \"east\"\n", "a") + hsm("name = \"east\"\n", "b") + store,
               "two HSMs are named 'east'");
  expect_error(tls + store, "add an [hsm] section, or [[hsm]] sections for a fleet");
}

TEST_F(ConfigTest, ParsesTextInMemoryLikeAFile) {
  auto config = parse_config(minimal(), "inline.toml");
  ASSERT_TRUE(config.has_value()) << config.error();
  EXPECT_EQ(config->keystores[0].prefix, "/example");
  auto bad = parse_config("[server]\nlisten = 1\n" + minimal(), "inline.toml");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().find("inline.toml:2: server.listen"), std::string::npos) << bad.error();
}

TEST_F(ConfigTest, ReadsEverySetting) {
  ::setenv("XKS_TEST_SECRET", "newSecretnewSecretnewSecretnewSecretnewSecret+/=", 1);
  ::setenv("XKS_TEST_CONFIG_PIN", "1234-5678", 1);
  auto config = load(
      "[server]\nlisten = \"[::1]:9443\"\nadmin_listen = \"127.0.0.1:19090\"\nio_threads = 2\n"
      "request_deadline_ms = 150\nmax_body_bytes = 32768\nhandshake_timeout_ms = 3000\n"
      "max_header_bytes = 8192\nhttp2_max_concurrent_streams = 16\n"
      "http2_connection_buffer_bytes = 1048576\n"
      "header_timeout_ms = 2000\nidle_timeout_ms = 30000\nmax_connections = 500\nfleet_size = 3\n"
      "max_connections_per_client = 50\nmax_handshakes_in_flight = 20\n"
      "admin_max_connections = 4\nhttp2_max_resets_per_second = 7\nreload_on_change = true\n"
      "[tls]\ncertificate_chain = \"c.pem\"\nprivate_key = \"k.pem\"\nclient_ca = \"ca.pem\"\n"
      "client_names = [\"cks.kms.us-east-1.amazonaws.com\"]\n"
      "[hsm]\nmodule = \"m.so\"\nvendor_profile = \"generic\"\niv_source = \"hsm-append\"\n"
      "bad_tag_rv = 5\ntoken_serial = \"abc\"\npin_env = \"XKS_TEST_CONFIG_PIN\"\nsessions = "
      "16\nworkers = 4\n"
      "health_key = \"h\"\n"
      "[[keystore]]\nprefix = \"/a/b_c-d\"\nregions = [\"us-east-1\", \"eu-west-3\"]\n"
      "keys = [\"foo\", \"bar\"]\n"
      "[[keystore.credential]]\naccess_key_id = \"AKIAXKSEXAMPLE234567\"\nsecret_file = \"" +
      secret_path() +
      "\"\ncreated = 2026-11-01T10:00:00Z\n"
      "[[keystore.credential]]\naccess_key_id = \"AKIAXKSNEXT234567ABC\"\n"
      "secret_env = \"XKS_TEST_SECRET\"\n"
      "[[keystore]]\nprefix = \"\"\nregions = [\"us-west-2\"]\n"
      "[[keystore.credential]]\naccess_key_id = \"AKIAXKSROOT234567ABC\"\nsecret_file = \"" +
      secret_path() + "\"\n");
  ASSERT_TRUE(config.has_value()) << config.error();
  EXPECT_EQ(config->server.listen.host, "::1");
  EXPECT_EQ(config->server.listen.port, 9443);
  EXPECT_EQ(config->server.io_threads, 2u);
  EXPECT_EQ(config->server.request_deadline, std::chrono::milliseconds(150));
  EXPECT_EQ(config->server.fleet_size, 3);
  EXPECT_EQ(config->server.max_connections, 500u);
  EXPECT_EQ(config->server.max_connections_per_client, 50u);
  EXPECT_EQ(config->server.max_handshakes_in_flight, 20u);
  EXPECT_EQ(config->server.admin_max_connections, 4u);
  EXPECT_EQ(config->server.limits.http2_max_resets_per_second, 7u);
  EXPECT_TRUE(config->server.reload_on_change);
  EXPECT_EQ(config->server.limits.max_header_bytes, 8192u);
  EXPECT_EQ(config->server.limits.max_body_bytes, 32768u);
  EXPECT_EQ(config->server.limits.http2_max_concurrent_streams, 16u);
  EXPECT_EQ(config->server.limits.http2_connection_buffer_bytes, 1048576u);
  EXPECT_EQ(config->tls.client_names.size(), 1u);
  EXPECT_EQ(config->hsm[0].profile.iv_source, hsm::IvSource::kHsmAppendsToOutput);
  EXPECT_EQ(config->hsm[0].profile.bad_tag_rv, 5u);
  EXPECT_EQ(config->hsm[0].token.by, hsm::TokenSelector::By::kSerial);
  EXPECT_EQ(config->hsm[0].pin.name, "XKS_TEST_CONFIG_PIN");
  // Read with the configuration, so that serve can scrub the variable before threads start.
  EXPECT_EQ(config->hsm[0].pin.value, "1234-5678");
  EXPECT_EQ(config->hsm[0].workers, 4u);
  ASSERT_EQ(config->keystores.size(), 2u);
  const KeyStoreConfig& first = config->keystores[0];
  EXPECT_EQ(first.regions.size(), 2u);
  EXPECT_EQ(first.keys, (std::vector<std::string>{"foo", "bar"}));
  ASSERT_EQ(first.credentials.size(), 2u);
  EXPECT_EQ(first.credentials[0].created,
            std::chrono::sys_days{std::chrono::year{2026} / 11 / 1} + std::chrono::hours{10});
  EXPECT_EQ(first.credentials[1].credential.secret_access_key,
            "newSecretnewSecretnewSecretnewSecretnewSecret+/=");
  EXPECT_EQ(config->keystores[1].prefix, "");
}

TEST_F(ConfigTest, ThePerClientConnectionLimitDefaultsToAtMostTheGlobalOne) {
  auto config = load("[server]\nmax_connections = 300\n" + minimal());
  ASSERT_TRUE(config.has_value()) << config.error();
  EXPECT_EQ(config->server.max_connections_per_client, 300u);
  auto defaults = load(minimal());
  ASSERT_TRUE(defaults.has_value()) << defaults.error();
  EXPECT_EQ(defaults->server.max_connections_per_client, 1000u);
  EXPECT_EQ(defaults->server.max_handshakes_in_flight, 128u);
}

TEST_F(ConfigTest, ASecretFileOpenToOtherUsersIsRefused) {
  std::filesystem::permissions(dir_ / "secret", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  expect_error(minimal(), "is open to other users (mode 0604)");
  // Group read is allowed (Kubernetes mounts secrets group-owned).
  std::filesystem::permissions(
      dir_ / "secret", std::filesystem::perms::owner_read | std::filesystem::perms::group_read);
  EXPECT_TRUE(load(minimal()).has_value());
}

TEST_F(ConfigTest, AClientCaNeedsClientNames) {
  std::string text = minimal();
  text.replace(text.find("[hsm]"), 0, "client_ca = \"ca.pem\"\n");
  expect_error(text, "client_ca needs client_names");
}

TEST_F(ConfigTest, ReadsTheLogSection) {
  auto json = load("[log]\nformat = \"json\"\nlevel = \"warn\"\n" + minimal());
  ASSERT_TRUE(json.has_value()) << json.error();
  EXPECT_TRUE(json->log.json);
  EXPECT_EQ(json->log.level, "warn");
  expect_error("[log]\nformat = \"xml\"\n" + minimal(), "log.format: must be text or json");
  expect_error("[log]\nlevel = \"loud\"\n" + minimal(), "log.level: must be trace");
}

TEST_F(ConfigTest, ReadsTheAuditSection) {
  auto off = load(minimal());
  ASSERT_TRUE(off.has_value()) << off.error();
  EXPECT_TRUE(off->audit.path.empty());
  auto on = load(
      "[audit]\npath = \"/var/log/xks/audit.log\"\non_full = \"reject\"\n"
      "queue_size = 128\n" +
      minimal());
  ASSERT_TRUE(on.has_value()) << on.error();
  EXPECT_EQ(on->audit.path, "/var/log/xks/audit.log");
  EXPECT_EQ(on->audit.on_full, AuditConfig::OnFull::kReject);
  EXPECT_EQ(on->audit.queue_size, 128u);
  expect_error("[audit]\npath = \"a\"\non_full = \"block\"\n" + minimal(),
               "audit.on_full: must be drop or reject");
  expect_error("[audit]\non_full = \"drop\"\n" + minimal(), "audit.path: is required");
}

TEST_F(ConfigTest, NamesFileLineAndKeyOfEachMistake) {
  expect_error(minimal() + "colour = \"blue\"\n", "keystore.credential.colour: unknown key");
  expect_error("[server]\nlisten = \"0.0.0.0:8443\"\nspeed = 3\n" + minimal(),
               "xks.toml:3: server.speed: unknown key");
  expect_error("[server]\nrequest_deadline_ms = \"fast\"\n" + minimal(),
               "xks.toml:2: server.request_deadline_ms: must be an integer");
  expect_error("[server]\nrequest_deadline_ms = 0\n" + minimal(),
               "server.request_deadline_ms: must be between 10 and 60000");
  expect_error("[server]\nlisten = \"8443\"\n" + minimal(), "server.listen: must be host:port");
  expect_error("[server]\nlisten = \"h:99999\"\n" + minimal(), "server.listen: must be host:port");
  expect_error(minimal("", "vendor_profile = \"acme\"\n"), "hsm.vendor_profile: must be");
  expect_error(minimal("", "vendor_profile = \"generic\"\n"), "hsm.iv_source");
  expect_error(minimal("", "token_serial = \"x\"\n"), "exactly one of token_label");
  expect_error(minimal("", "pin_env = \"X\"\n"), "exactly one of pin_file or pin_env");
  std::string unset_pin = minimal();
  const std::string pin_file = "pin_file = \"/etc/xks/pin\"";
  unset_pin.replace(unset_pin.find(pin_file), pin_file.size(), "pin_env = \"XKS_TEST_UNSET_PIN\"");
  expect_error(unset_pin, "XKS_TEST_UNSET_PIN is not set");
  expect_error(minimal("", "sessions = 0\n"), "hsm.sessions: must be between 1 and 1024");
  expect_error("[server]\nhttp2_connection_buffer_bytes = 70000\n" + minimal(),
               "xks.toml:2: server.http2_connection_buffer_bytes: must be at least max_body_bytes "
               "+ max_header_bytes (81920)");
  expect_error("[tls]\ncertificate_chain = \"c\"\n", "tls.private_key: is required");
  expect_error("this is = not toml", "xks.toml:1:");
}

TEST_F(ConfigTest, AppliesTheSpecsFormatRules) {
  auto with_prefix = [&](const std::string& prefix) {
    std::string text = minimal();
    text.replace(text.find("prefix = \"/example\""), 19, "prefix = \"" + prefix + "\"");
    return text;
  };
  for (const char* bad : {"example", "/example/", "/a//b", "/a b", "/a.b", "/a%20"}) {
    expect_error(with_prefix(bad), "keystore.prefix: must be");
  }
  expect_error(with_prefix("/" + std::string(117, 'p')), "keystore.prefix");
  EXPECT_TRUE(load(with_prefix("/" + std::string(116, 'p'))).has_value());

  std::string short_id = minimal();
  short_id.replace(short_id.find("AKIAXKSEXAMPLE234567"), 20, "AKIA0123");
  expect_error(short_id, "access_key_id: must be 20 to 30 characters of A-Z and 2-7");
  std::string lower_id = minimal();
  lower_id.replace(lower_id.find("AKIAXKSEXAMPLE234567"), 20, "akiaxksexample234567");
  expect_error(lower_id, "access_key_id: must be");
  std::ofstream(dir_ / "secret") << "short\n";
  expect_error(minimal(), "the secret must be 43 to 64 characters");
}

TEST_F(ConfigTest, ReadsKeyListsRulesQuotasAndTheKillSwitch) {
  auto config = load(minimal(
      "keys = [\"foo\", \"tenant-?-*\"]\n"
      "blocked = true\nblocked_by = \"alice\"\nblocked_reason = \"incident 7\"\n"
      "blocked_at = 2026-11-29T19:00:00Z\n"
      "[keystore.quota]\nrequests_per_second = 50\nper_key_requests_per_second = 2.5\n"
      "per_key_burst = 5\n"
      "[[keystore.rule]]\nid = \"no-mallory-decrypt\"\neffect = \"deny\"\n"
      "operations = [\"Decrypt\"]\nprincipals = [\"arn:aws:iam::*:user/Mallory\"]\n"
      "[[keystore.rule]]\nid = \"ebs\"\neffect = \"allow\"\nvia_services = [\"ebs.*\", \"\"]\n"
      "key_ids = [\"foo\"]\nkms_operations = [\"Encrypt\"]\nkms_key_arns = [\"arn:*\"]\n"
      "source_vpcs = [\"vpc-1\"]\nsource_vpces = [\"vpce-1\"]\n"));
  ASSERT_TRUE(config.has_value()) << config.error();
  const KeyStoreConfig& store = config->keystores[0];
  EXPECT_EQ(store.keys, (std::vector<std::string>{"foo", "tenant-?-*"}));
  EXPECT_TRUE(store.block.blocked);
  EXPECT_EQ(store.block.by, "alice");
  EXPECT_EQ(store.block.reason, "incident 7");
  EXPECT_EQ(store.block.at,
            std::chrono::sys_days{std::chrono::year{2026} / 11 / 29} + std::chrono::hours{19});
  EXPECT_EQ(store.quota.requests_per_second, 50);
  EXPECT_EQ(store.quota.burst, 50);  // defaults to the rate
  EXPECT_EQ(store.quota.key_requests_per_second, 2.5);
  EXPECT_EQ(store.quota.key_burst, 5);
  ASSERT_EQ(store.rules.size(), 2u);
  EXPECT_EQ(store.rules[0].id, "no-mallory-decrypt");
  EXPECT_TRUE(store.rules[0].deny);
  EXPECT_EQ(store.rules[0].operations, std::vector<std::string>{"Decrypt"});
  EXPECT_EQ(store.rules[0].principals, std::vector<std::string>{"arn:aws:iam::*:user/Mallory"});
  EXPECT_FALSE(store.rules[1].deny);
  EXPECT_EQ(store.rules[1].via_services, (std::vector<std::string>{"ebs.*", ""}));
  EXPECT_EQ(store.rules[1].key_ids, std::vector<std::string>{"foo"});
  EXPECT_EQ(store.rules[1].kms_operations, std::vector<std::string>{"Encrypt"});
  EXPECT_EQ(store.rules[1].kms_key_arns, std::vector<std::string>{"arn:*"});
  EXPECT_EQ(store.rules[1].source_vpcs, std::vector<std::string>{"vpc-1"});
  EXPECT_EQ(store.rules[1].source_vpces, std::vector<std::string>{"vpce-1"});
}

TEST_F(ConfigTest, ReadsTheMigrationFromTheSampleProxy) {
  auto config = load(minimal("[keystore.aws_sample_proxy]\nciphertext_metadata = \"c2FtcGxl\"\n"));
  ASSERT_TRUE(config.has_value()) << config.error();
  EXPECT_EQ(config->keystores[0].aws_sample_metadata,
            (std::vector<std::uint8_t>{'s', 'a', 'm', 'p', 'l', 'e'}));
  auto none = load(minimal("[keystore.aws_sample_proxy]\n"));
  ASSERT_TRUE(none.has_value()) << none.error();
  EXPECT_EQ(none->keystores[0].aws_sample_metadata, std::vector<std::uint8_t>{});
  EXPECT_FALSE(load(minimal())->keystores[0].aws_sample_metadata.has_value());
  expect_error(minimal("[keystore.aws_sample_proxy]\nciphertext_metadata = \"!!\"\n"),
               "keystore.aws_sample_proxy.ciphertext_metadata: must be base64 of at most 20 bytes");
}

TEST_F(ConfigTest, AuthorizationMistakesNameTheRuleAndTheField) {
  const std::string rule = "[[keystore.rule]]\nid = \"r1\"\neffect = \"deny\"\n";
  expect_error(minimal() + rule + "operations = [\"Sign\"]\n",
               "keystore.rule[r1].operations: 'Sign' is not Encrypt, Decrypt or GetKeyMetadata");
  expect_error(minimal() + rule + "operations = [\"GetHealthStatus\"]\n",
               "keystore.rule[r1].operations: GetHealthStatus is never gated");
  expect_error(minimal() + rule + "principals = []\n",
               "keystore.rule[r1].principals: lists nothing");
  expect_error(minimal() + rule + "principal = [\"x\"]\n",
               "keystore.rule[r1].principal: unknown key");
  expect_error(minimal() + rule + "principals = \"x\"\n",
               "keystore.rule[r1].principals: must be an array of strings");
  expect_error(minimal() + "[[keystore.rule]]\nid = \"r1\"\neffect = \"permit\"\n",
               "keystore.rule[r1].effect: must be allow or deny");
  expect_error(minimal() + "[[keystore.rule]]\nid = \"r1\"\n",
               "keystore.rule[r1].effect: is required");
  expect_error(minimal() + "[[keystore.rule]]\neffect = \"deny\"\n",
               "keystore.rule.id: is required");
  expect_error(minimal() + "[[keystore.rule]]\nid = \"a b\"\neffect = \"deny\"\n",
               "keystore.rule.id: must be 1 to 64 of");
  expect_error(minimal() + rule + rule, "rule id 'r1' is used twice");
  expect_error(minimal("keys = [\"foo/bar\"]\n"), "keystore.keys: 'foo/bar' is not a key id");
  expect_error(minimal("keys = [\"xks-health\"]\n"),
               "keystore.keys: 'xks-health' is the HSM's health key");
  expect_error(minimal("allowed_keys = [\"foo\"]\n"), "allowed_keys: is now called keys");
  expect_error(minimal("blocked = \"yes\"\n"), "keystore.blocked: must be true or false");
  expect_error(minimal() + "[keystore.quota]\nburst = 5\n",
               "keystore.quota.requests_per_second: set requests_per_second");
  expect_error(minimal() + "[keystore.quota]\nrequests_per_second = -1\n",
               "keystore.quota.requests_per_second: must be between 0 and");
}

TEST_F(ConfigTest, TheKillSwitchEditChangesOnlyItsKeyStoresLines) {
  const std::string text =
      "# keep me\n[[keystore]]\nprefix = \"/a\"\n[[keystore]] # the second\nprefix = "
      "\"/b\"\nblocked = false\nregions = [\"us-east-1\"]\n";
  BlockConfig block{true, "alice \"the owner\"", "incident\n42",
                    std::chrono::sys_days{std::chrono::year{2026} / 11 / 29} +
                        std::chrono::hours{19} + std::chrono::seconds{5}};
  auto blocked = with_keystore_block(text, "x.toml", "/b", block);
  ASSERT_TRUE(blocked.has_value()) << blocked.error();
  EXPECT_EQ(*blocked,
            "# keep me\n[[keystore]]\nprefix = \"/a\"\n[[keystore]] # the second\n"
            "blocked = true\nblocked_by = \"alice \\\"the owner\\\"\"\n"
            "blocked_at = 2026-11-29T19:00:05Z\nblocked_reason = \"incident\\u000A42\"\n"
            "prefix = \"/b\"\nregions = [\"us-east-1\"]\n");
  // What the edit wrote reads back as written.
  std::string with_credentials = *blocked +
                                 "[[keystore.credential]]\naccess_key_id = "
                                 "\"AKIAXKSEXAMPLE234567\"\nsecret_file = \"" +
                                 secret_path() + "\"\n";
  auto parsed = load(minimal() + with_credentials.substr(with_credentials.find("[[keystore]] #")));
  ASSERT_TRUE(parsed.has_value()) << parsed.error();
  EXPECT_EQ(parsed->keystores[1].block, block);
  // Unblocking removes the lines again.
  auto unblocked = with_keystore_block(*blocked, "x.toml", "/b", {});
  ASSERT_TRUE(unblocked.has_value());
  EXPECT_EQ(*unblocked,
            "# keep me\n[[keystore]]\nprefix = \"/a\"\n[[keystore]] # the second\nprefix = "
            "\"/b\"\nregions = [\"us-east-1\"]\n");
  EXPECT_EQ(with_keystore_block(text, "x.toml", "/c", block).error(),
            "x.toml: no [[keystore]] has prefix = \"/c\"");
  EXPECT_NE(with_keystore_block("[[keystore]\n", "x.toml", "/a", block).error().find("x.toml:1:"),
            std::string::npos);
  auto multi_line =
      with_keystore_block("[[keystore]]\nprefix = \"/a\"\nblocked_reason = \"\"\"one\ntwo\"\"\"\n",
                          "x.toml", "/a", block);
  ASSERT_FALSE(multi_line.has_value());
  EXPECT_NE(multi_line.error().find("spans several lines"), std::string::npos);
  // Layouts a line edit cannot handle, and text TOML cannot hold, are refused, not written.
  EXPECT_NE(with_keystore_block("keystore = [{prefix = \"/a\"}, {prefix = \"/b\"}]\n", "x.toml",
                                "/a", block)
                .error()
                .find("inline table"),
            std::string::npos);
  BlockConfig not_utf8 = block;
  not_utf8.reason = "\xff\xfe";
  EXPECT_NE(with_keystore_block(text, "x.toml", "/b", not_utf8).error().find("does not read back"),
            std::string::npos);
}

TEST_F(ConfigTest, RejectsDuplicatesAndMissingParts) {
  std::string twice = minimal();
  std::string keystore = twice.substr(twice.find("[[keystore]]"));
  expect_error(twice + keystore, "prefix '/example' is used twice");
  std::string same_id = minimal();
  same_id += same_id.substr(same_id.find("[[keystore.credential]]"));
  expect_error(same_id, "access key id listed twice");
  std::string no_regions = minimal();
  no_regions.replace(no_regions.find("regions = [\"us-east-1\"]"), 23, "regions = []");
  expect_error(no_regions, "keystore.regions: list at least one AWS region");
  std::string no_keystore = minimal();
  expect_error(no_keystore.substr(0, no_keystore.find("[[keystore]]")),
               "keystore: add at least one [[keystore]]");
}

}  // namespace
}  // namespace xks::proxy
