// Strict TOML configuration loading.
#include "xks/proxy/config/config.h"

#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

#include "xks/wire/base64.h"

namespace xks::proxy {

namespace {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads one table, remembering which keys were read, so that leftovers are reported.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string path, const std::string& file,
              const EnvironmentLookup& environment)
      : table_(table), path_(std::move(path)), file_(file), environment_(environment) {}

  // The reader of a table inside this one, named `key` in errors.
  TableReader child(const toml::table& table, std::string_view key) const {
    return TableReader(table, qualified(key), file_, environment_);
  }

  // A variable's value (secret_env, pin_env); nullopt when it is not set.
  std::optional<std::string> environment(const std::string& name) const {
    if (environment_)
      return environment_(name);
    const char* value = std::getenv(name.c_str());
    return value != nullptr ? std::optional<std::string>(value) : std::nullopt;
  }

  [[noreturn]] void fail(const toml::node* node, std::string_view key,
                         std::string_view problem) const {
    const toml::source_region& where = node != nullptr ? node->source() : table_.source();
    throw ConfigError(file_ + ":" + std::to_string(where.begin.line) + ": " + qualified(key) +
                      ": " + std::string(problem));
  }

  std::string qualified(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  const toml::node* node(std::string_view key) {
    known_.insert(std::string(key));
    return table_.get(key);
  }

  std::optional<std::string> string(std::string_view key) {
    const toml::node* value = node(key);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_string())
      fail(value, key, "must be a string");
    return value->as_string()->get();
  }

  std::string required_string(std::string_view key) {
    auto value = string(key);
    if (!value || value->empty())
      fail(nullptr, key, "is required");
    return *value;
  }

  // A string that must be one of `options`; `fallback` when absent.
  std::string one_of(std::string_view key, std::initializer_list<std::string_view> options,
                     std::string_view fallback) {
    std::string value = string(key).value_or(std::string(fallback));
    if (std::find(options.begin(), options.end(), value) != options.end())
      return value;
    std::string expected;
    for (auto it = options.begin(); it != options.end(); ++it) {
      if (it != options.begin())
        expected += std::next(it) == options.end() ? " or " : ", ";
      expected += *it;
    }
    fail(table_.get(key), key, "must be " + expected);
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const toml::node* value = node(key);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_integer())
      fail(value, key, "must be an integer");
    std::int64_t number = value->as_integer()->get();
    if (number < min || number > max) {
      fail(value, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    return number;
  }

  template <typename Target>
  void read_integer(std::string_view key, Target& target, std::int64_t min, std::int64_t max) {
    if (auto value = integer(key, min, max))
      target = static_cast<Target>(*value);
  }

  void read_millis(std::string_view key, std::chrono::milliseconds& target, std::int64_t min,
                   std::int64_t max) {
    if (auto value = integer(key, min, max))
      target = std::chrono::milliseconds(*value);
  }

  std::optional<std::vector<std::string>> strings(std::string_view key) {
    const toml::node* value = node(key);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_array())
      fail(value, key, "must be an array of strings");
    std::vector<std::string> out;
    for (const toml::node& item : *value->as_array()) {
      if (!item.is_string())
        fail(&item, key, "must be an array of strings");
      out.push_back(item.as_string()->get());
    }
    return out;
  }

  // An RFC 3339 date-time (UTC when it has no offset).
  std::optional<std::chrono::sys_seconds> date_time(std::string_view key) {
    const toml::node* value = node(key);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_date_time())
      fail(value, key, "must be an RFC 3339 date-time");
    const toml::date_time& at = value->as_date_time()->get();
    auto day =
        std::chrono::sys_days{std::chrono::year{at.date.year} / std::chrono::month{at.date.month} /
                              std::chrono::day{at.date.day}};
    auto seconds = day + std::chrono::hours{at.time.hour} + std::chrono::minutes{at.time.minute} +
                   std::chrono::seconds{at.time.second};
    if (at.offset)
      seconds -= std::chrono::minutes{at.offset->minutes};
    return seconds;
  }

  std::optional<double> number(std::string_view key, double min, double max) {
    const toml::node* value = node(key);
    if (value == nullptr)
      return std::nullopt;
    if (!value->is_number())
      fail(value, key, "must be a number");
    double number = value->is_integer() ? static_cast<double>(value->as_integer()->get())
                                        : value->as_floating_point()->get();
    if (!(number >= min && number <= max)) {
      fail(value, key,
           "must be between " + std::to_string(static_cast<long long>(min)) + " and " +
               std::to_string(static_cast<long long>(max)));
    }
    return number;
  }

  bool boolean(std::string_view key, bool fallback) {
    const toml::node* value = node(key);
    if (value == nullptr)
      return fallback;
    if (!value->is_boolean())
      fail(value, key, "must be true or false");
    return value->as_boolean()->get();
  }

  // Errors name this table as `path` from now on (a rule, once its id is known).
  void rename(std::string path) { path_ = std::move(path); }
  const std::string& path() const { return path_; }

  // Reports the first key nobody asked for.
  void finish() const {
    for (const auto& [key, value] : table_) {
      if (!known_.contains(std::string(key.str())))
        fail(&value, key.str(), "unknown key");
    }
  }

  const toml::table& table() const { return table_; }
  const std::string& file() const { return file_; }

 private:
  const toml::table& table_;
  std::string path_;
  const std::string& file_;
  const EnvironmentLookup& environment_;
  std::set<std::string> known_;
};

ListenAddress parse_address(TableReader& reader, std::string_view key, ListenAddress fallback) {
  auto text = reader.string(key);
  if (!text)
    return fallback;
  std::size_t colon = text->rfind(':');
  auto bad = [&] { reader.fail(reader.table().get(key), key, "must be host:port"); };
  if (colon == std::string::npos || colon == 0)
    bad();
  std::string host = text->substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']')
      bad();
    host = host.substr(1, host.size() - 2);
  }
  std::string port_text = text->substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), ::isdigit)) {
    bad();
  }
  int port = std::stoi(port_text);
  if (port > 65535)
    bad();
  return {host, static_cast<std::uint16_t>(port)};
}

// A file holding a secret (PIN, SigV4 secret, TLS or audit key) must not be open to other
// users: a mode with any "other" permission is refused. Group read is allowed, for the
// group-owned files that Kubernetes mounts (fsGroup).
void check_private_file(TableReader& reader, std::string_view key, const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0)
    return;  // missing files are reported where they are read
  if ((status.st_mode & S_IRWXO) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(status.st_mode & 07777));
    reader.fail(reader.table().get(key), key,
                path + " is open to other users (mode " + mode + "): chmod o-rwx (e.g. 0600)");
  }
}

// Longer than any SigV4 secret the spec allows (64): what is longer is refused as malformed.
constexpr std::size_t kMaxSecretFileBytes = 256;

std::string read_secret_file(TableReader& reader, std::string_view key, const std::string& path) {
  check_private_file(reader, key, path);
  // Unbuffered, into room reserved up front: no stream buffer or outgrown string is left
  // holding a copy of the secret.
  std::ifstream file;
  file.rdbuf()->pubsetbuf(nullptr, 0);
  file.open(path, std::ios::binary);
  if (!file)
    reader.fail(reader.table().get(key), key, "cannot read " + path);
  std::string secret;
  secret.reserve(kMaxSecretFileBytes);
  for (std::istreambuf_iterator<char> it(file), end;
       it != end && secret.size() < kMaxSecretFileBytes; ++it)
    secret.push_back(*it);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
    secret.pop_back();
  return secret;
}

ServerConfig parse_server(TableReader reader) {
  ServerConfig server;
  server.listen = parse_address(reader, "listen", server.listen);
  server.admin_listen = parse_address(reader, "admin_listen", server.admin_listen);
  reader.read_integer("io_threads", server.io_threads, 0, 256);
  reader.read_millis("request_deadline_ms", server.request_deadline, 10, 60'000);
  reader.read_integer("max_header_bytes", server.limits.max_header_bytes, 1024, 1 << 20);
  reader.read_integer("max_body_bytes", server.limits.max_body_bytes, 1024, 16 << 20);
  reader.read_integer("http2_max_concurrent_streams", server.limits.http2_max_concurrent_streams, 1,
                      1024);
  reader.read_integer("http2_connection_buffer_bytes", server.limits.http2_connection_buffer_bytes,
                      65535, 1 << 30);
  reader.read_integer("http2_max_resets_per_second", server.limits.http2_max_resets_per_second, 1,
                      100'000);
  // A connection must be able to hold one request of the largest size, or such requests
  // would be refused (REFUSED_STREAM) forever.
  const HttpLimits& limits = server.limits;
  if (limits.http2_connection_buffer_bytes < limits.max_body_bytes + limits.max_header_bytes) {
    reader.fail(reader.table().get("http2_connection_buffer_bytes"),
                "http2_connection_buffer_bytes",
                "must be at least max_body_bytes + max_header_bytes (" +
                    std::to_string(limits.max_body_bytes + limits.max_header_bytes) + ")");
  }
  reader.read_millis("handshake_timeout_ms", server.handshake_timeout, 100, 600'000);
  reader.read_millis("header_timeout_ms", server.header_timeout, 100, 600'000);
  reader.read_millis("idle_timeout_ms", server.idle_timeout, 100, 3'600'000);
  reader.read_integer("max_connections", server.max_connections, 1, 1'000'000);
  server.max_connections_per_client =
      std::min(server.max_connections_per_client, server.max_connections);
  reader.read_integer("max_connections_per_client", server.max_connections_per_client, 1,
                      1'000'000);
  reader.read_integer("max_handshakes_in_flight", server.max_handshakes_in_flight, 1, 100'000);
  reader.read_integer("admin_max_connections", server.admin_max_connections, 1, 10'000);
  reader.read_integer("fleet_size", server.fleet_size, 1, 1000);
  server.reload_on_change = reader.boolean("reload_on_change", false);
  reader.finish();
  return server;
}

TlsConfig parse_tls(TableReader reader) {
  TlsConfig tls;
  tls.certificate_chain = reader.required_string("certificate_chain");
  tls.private_key = reader.required_string("private_key");
  check_private_file(reader, "private_key", tls.private_key);
  tls.client_ca = reader.string("client_ca").value_or("");
  tls.client_names = reader.strings("client_names").value_or(std::vector<std::string>{});
  if (!tls.client_names.empty() && tls.client_ca.empty()) {
    reader.fail(reader.table().get("client_names"), "client_names", "needs client_ca");
  }
  // Without names, any certificate the CA ever issued would do (a public CA issues many).
  if (!tls.client_ca.empty() && tls.client_names.empty()) {
    reader.fail(reader.table().get("client_ca"), "client_names",
                "client_ca needs client_names: the names KMS's client certificate carries "
                "(cks.kms.<region>.amazonaws.com)");
  }
  reader.finish();
  return tls;
}

hsm::CircuitBreakerOptions parse_circuit_breaker(TableReader reader) {
  hsm::CircuitBreakerOptions breaker;
  reader.read_integer("consecutive_failures", breaker.consecutive_failures, 1, 1000);
  std::int64_t percent = static_cast<std::int64_t>(breaker.failure_ratio * 100);
  reader.read_integer("failure_percent", percent, 1, 100);
  breaker.failure_ratio = static_cast<double>(percent) / 100;
  reader.read_integer("minimum_calls", breaker.minimum_calls, 1, 1'000'000);
  reader.read_millis("window_ms", breaker.window, 100, 3'600'000);
  reader.read_millis("open_ms", breaker.open_for, 10, 3'600'000);
  if (auto max_open = reader.integer("max_open_ms", 10, 3'600'000))
    breaker.max_open_for = std::chrono::milliseconds(*max_open);
  else
    breaker.max_open_for = std::max(breaker.max_open_for, breaker.open_for);
  if (breaker.max_open_for < breaker.open_for) {
    reader.fail(reader.table().get("max_open_ms"), "max_open_ms", "must be at least open_ms");
  }
  reader.finish();
  return breaker;
}

HsmConfig parse_hsm(TableReader reader) {
  HsmConfig hsm;
  hsm.module.path = reader.required_string("module");
  hsm.module.init_reserved = reader.string("init_reserved").value_or("");
  std::string profile = reader.string("vendor_profile").value_or("softhsm");
  if (profile == "generic") {
    auto iv = reader.string("iv_source");
    auto source = iv ? hsm::iv_source(*iv) : std::nullopt;
    if (!source) {
      reader.fail(reader.table().get("iv_source"), "iv_source",
                  "the generic profile needs proxy, hsm-buffer or hsm-append");
    }
    hsm.profile = {"generic", *source};
    reader.read_integer("bad_tag_rv", hsm.profile.bad_tag_rv, 0, 0xffffffffLL);
  } else if (auto known = hsm::vendor_profile(profile)) {
    hsm.profile = *known;
  } else {
    reader.fail(reader.table().get("vendor_profile"), "vendor_profile",
                "must be softhsm, nss, cloudhsm, nshield, luna or generic");
  }
  hsm.name = reader.string("name").value_or("");
  auto label = reader.string("token_label");
  auto serial = reader.string("token_serial");
  auto slot = reader.integer("slot_id", 0, 0xffffffffLL);
  if ((label ? 1 : 0) + (serial ? 1 : 0) + (slot ? 1 : 0) != 1) {
    reader.fail(nullptr, "token_label",
                "name the token by exactly one of token_label, "
                "token_serial or slot_id");
  }
  hsm.token = label    ? hsm::TokenSelector{hsm::TokenSelector::By::kLabel, *label}
              : serial ? hsm::TokenSelector{hsm::TokenSelector::By::kSerial, *serial}
                       : hsm::TokenSelector{hsm::TokenSelector::By::kSlotId, std::to_string(*slot)};
  auto pin_file = reader.string("pin_file");
  auto pin_env = reader.string("pin_env");
  if ((pin_file ? 1 : 0) + (pin_env ? 1 : 0) != 1) {
    reader.fail(nullptr, "pin_file", "give the PIN by exactly one of pin_file or pin_env");
  }
  hsm.pin = pin_file ? hsm::PinSource{hsm::PinSource::From::kFile, *pin_file, {}}
                     : hsm::PinSource{hsm::PinSource::From::kEnvironment, *pin_env, {}};
  if (pin_env) {
    // Read now, with the rest of the configuration: the proxy scrubs the variable before any
    // of its threads starts.
    auto value = reader.environment(*pin_env);
    if (!value || value->empty())
      reader.fail(reader.table().get("pin_env"), "pin_env", *pin_env + " is not set");
    hsm.pin.value = std::move(*value);
  }
  if (pin_file)
    check_private_file(reader, "pin_file", *pin_file);
  hsm.sessions = hsm.profile.default_sessions;
  reader.read_integer("sessions", hsm.sessions, 1, 1024);
  reader.read_integer("workers", hsm.workers, 0, 1024);
  hsm.health_key = reader.required_string("health_key");
  if (const toml::node* breaker = reader.node("circuit_breaker")) {
    if (!breaker->is_table())
      reader.fail(breaker, "circuit_breaker", "must be a table");
    hsm.circuit_breaker =
        parse_circuit_breaker(reader.child(*breaker->as_table(), "circuit_breaker"));
  }
  reader.finish();
  return hsm;
}

CredentialConfig parse_credential(TableReader reader) {
  CredentialConfig out;
  out.credential.access_key_id = reader.required_string("access_key_id");
  if (!is_valid_access_key_id(out.credential.access_key_id)) {
    reader.fail(reader.table().get("access_key_id"), "access_key_id",
                "must be 20 to 30 characters of A-Z and 2-7");
  }
  auto file = reader.string("secret_file");
  auto env = reader.string("secret_env");
  if ((file ? 1 : 0) + (env ? 1 : 0) != 1) {
    reader.fail(nullptr, "secret_file",
                "give the secret by exactly one of secret_file or secret_env");
  }
  if (file) {
    out.credential.secret_access_key = read_secret_file(reader, "secret_file", *file);
    out.secret_file = *file;
  } else {
    auto value = reader.environment(*env);
    if (!value)
      reader.fail(reader.table().get("secret_env"), "secret_env", *env + " is not set");
    out.credential.secret_access_key = std::move(*value);
    out.secret_env = *env;
  }
  if (!is_valid_secret(out.credential.secret_access_key)) {
    reader.fail(reader.table().get(file ? "secret_file" : "secret_env"),
                file ? "secret_file" : "secret_env",
                "the secret must be 43 to 64 characters of A-Z, a-z, 0-9, +, / and =");
  }
  out.created = reader.date_time("created");
  reader.finish();
  return out;
}

LogConfig parse_log(TableReader reader) {
  LogConfig log;
  log.json = reader.one_of("format", {"text", "json"}, "text") == "json";
  log.level = reader.one_of("level", {"trace", "debug", "info", "warn", "error"}, "info");
  reader.finish();
  return log;
}

AuditConfig parse_audit(TableReader reader) {
  AuditConfig audit;
  audit.path = reader.required_string("path");
  audit.on_full = reader.one_of("on_full", {"drop", "reject"}, "drop") == "reject"
                      ? AuditConfig::OnFull::kReject
                      : AuditConfig::OnFull::kDrop;
  reader.read_integer("queue_size", audit.queue_size, 1, 10'000'000);
  audit.key_file = reader.string("key_file").value_or("");
  if (!audit.key_file.empty())
    check_private_file(reader, "key_file", audit.key_file);
  reader.read_integer("fsync_records", audit.fsync_records, 0, 1'000'000);
  reader.read_millis("fsync_interval_ms", audit.fsync_interval, 0, 3'600'000);
  reader.read_integer("unauthenticated_per_second", audit.unauthenticated_per_second, 0, 100'000);
  reader.finish();
  return audit;
}

bool is_pattern_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
         c == '*' || c == '?';
}

AuthorizationRule parse_rule(TableReader reader) {
  AuthorizationRule rule;
  rule.id = reader.required_string("id");
  if (rule.id.size() > 64 || !std::all_of(rule.id.begin(), rule.id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      })) {
    reader.fail(reader.table().get("id"), "id", "must be 1 to 64 of A-Z a-z 0-9 . _ -");
  }
  reader.rename(reader.path() + "[" + rule.id + "]");
  if (reader.table().get("effect") == nullptr)
    reader.fail(nullptr, "effect", "is required (allow or deny)");
  rule.deny = reader.one_of("effect", {"allow", "deny"}, "allow") == "deny";
  auto patterns = [&](std::string_view key, std::vector<std::string>& target) {
    auto values = reader.strings(key);
    if (!values)
      return;
    if (values->empty())
      reader.fail(reader.table().get(key), key, "lists nothing (leave it out to match any)");
    target = std::move(*values);
  };
  patterns("operations", rule.operations);
  for (const std::string& operation : rule.operations) {
    if (operation == "GetHealthStatus")
      reader.fail(reader.table().get("operations"), "operations", "GetHealthStatus is never gated");
    if (operation != "Encrypt" && operation != "Decrypt" && operation != "GetKeyMetadata") {
      reader.fail(reader.table().get("operations"), "operations",
                  "'" + operation + "' is not Encrypt, Decrypt or GetKeyMetadata");
    }
  }
  patterns("key_ids", rule.key_ids);
  patterns("kms_operations", rule.kms_operations);
  patterns("principals", rule.principals);
  patterns("kms_key_arns", rule.kms_key_arns);
  patterns("via_services", rule.via_services);
  patterns("source_vpcs", rule.source_vpcs);
  patterns("source_vpces", rule.source_vpces);
  reader.finish();
  return rule;
}

QuotaConfig parse_quota(TableReader reader) {
  QuotaConfig quota;
  constexpr double kMax = 10'000'000;
  quota.requests_per_second = reader.number("requests_per_second", 0, kMax).value_or(0);
  quota.burst = reader.number("burst", 1, kMax).value_or(std::max(1.0, quota.requests_per_second));
  quota.key_requests_per_second = reader.number("per_key_requests_per_second", 0, kMax).value_or(0);
  quota.key_burst = reader.number("per_key_burst", 1, kMax)
                        .value_or(std::max(1.0, quota.key_requests_per_second));
  if (quota.requests_per_second == 0 && quota.key_requests_per_second == 0) {
    reader.fail(nullptr, "requests_per_second",
                "set requests_per_second or per_key_requests_per_second (or leave out the quota)");
  }
  reader.finish();
  return quota;
}

KeyStoreConfig parse_keystore(TableReader reader) {
  KeyStoreConfig store;
  store.prefix = reader.string("prefix").value_or("");
  if (!is_valid_uri_prefix(store.prefix)) {
    reader.fail(reader.table().get("prefix"), "prefix",
                "must be empty or /name[/name...] of A-Z a-z 0-9 _ -, at most 117 characters "
                "(prefix + /kms/xks/v1 <= 128)");
  }
  store.regions = reader.strings("regions").value_or(std::vector<std::string>{});
  if (store.regions.empty())
    reader.fail(nullptr, "regions", "list at least one AWS region");
  if (reader.table().get("allowed_keys") != nullptr)
    reader.fail(reader.table().get("allowed_keys"), "allowed_keys", "is now called keys");
  store.keys = reader.strings("keys").value_or(std::vector<std::string>{});
  for (const std::string& key : store.keys) {
    if (key.empty() || key.size() > 128 || !std::all_of(key.begin(), key.end(), is_pattern_char)) {
      reader.fail(reader.table().get("keys"), "keys",
                  "'" + key + "' is not a key id or pattern (1 to 128 of A-Z a-z 0-9 . _ - * ?)");
    }
  }
  if (const toml::node* rules = reader.node("rule")) {
    if (!rules->is_array_of_tables())
      reader.fail(rules, "rule", "must be [[keystore.rule]] tables");
    std::set<std::string> ids;
    for (const toml::node& item : *rules->as_array()) {
      auto rule = parse_rule(reader.child(*item.as_table(), "rule"));
      if (!ids.insert(rule.id).second)
        reader.fail(&item, "rule", "rule id '" + rule.id + "' is used twice");
      store.rules.push_back(std::move(rule));
    }
  }
  if (const toml::node* quota = reader.node("quota")) {
    if (!quota->is_table())
      reader.fail(quota, "quota", "must be a table");
    store.quota = parse_quota(reader.child(*quota->as_table(), "quota"));
  }
  store.allow_unprotected_keys = reader.boolean("allow_unprotected_keys", false);
  if (const toml::node* sample = reader.node("aws_sample_proxy")) {
    if (!sample->is_table())
      reader.fail(sample, "aws_sample_proxy", "must be a table");
    TableReader migration = reader.child(*sample->as_table(), "aws_sample_proxy");
    std::string encoded = migration.string("ciphertext_metadata").value_or("");
    auto decoded = wire::base64_decode(encoded);
    if (!decoded || decoded->size() > 20) {
      migration.fail(sample->as_table()->get("ciphertext_metadata"), "ciphertext_metadata",
                     "must be base64 of at most 20 bytes");
    }
    store.aws_sample_metadata = std::move(*decoded);
    migration.finish();
  }
  store.block.blocked = reader.boolean("blocked", false);
  store.block.by = reader.string("blocked_by").value_or("");
  store.block.reason = reader.string("blocked_reason").value_or("");
  store.block.at = reader.date_time("blocked_at");
  const toml::node* credentials = reader.node("credential");
  if (credentials == nullptr || !credentials->is_array_of_tables() ||
      credentials->as_array()->empty()) {
    reader.fail(credentials, "credential", "add at least one [[keystore.credential]]");
  }
  std::set<std::string> ids;
  for (const toml::node& item : *credentials->as_array()) {
    auto credential = parse_credential(reader.child(*item.as_table(), "credential"));
    if (!ids.insert(credential.credential.access_key_id).second) {
      reader.fail(&item, "credential", "access key id listed twice");
    }
    store.credentials.push_back(std::move(credential));
  }
  reader.finish();
  return store;
}

}  // namespace

bool is_valid_access_key_id(std::string_view id) {
  return id.size() >= 20 && id.size() <= 30 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7');
         });
}

bool is_valid_secret(std::string_view secret) {
  return secret.size() >= 43 && secret.size() <= 64 &&
         std::all_of(secret.begin(), secret.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=';
         });
}

bool is_valid_uri_prefix(std::string_view prefix) {
  if (prefix.empty())
    return true;
  constexpr std::size_t kMaxUriPath = 128;
  if (prefix.size() + std::string_view("/kms/xks/v1").size() > kMaxUriPath)
    return false;
  if (prefix.front() != '/' || prefix.back() == '/' ||
      prefix.find("//") != std::string_view::npos) {
    return false;
  }
  return std::all_of(prefix.begin(), prefix.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-';
  });
}

namespace {

// `parse` yields the TOML table; `path` names the source in every error.
template <typename Parse>
tl::expected<Config, std::string> read_config(const std::string& path,
                                              const EnvironmentLookup& environment, Parse parse) {
  try {
    toml::table root = parse();
    TableReader reader(root, "", path, environment);
    Config config;
    auto section = [&](std::string_view name, bool required) -> const toml::table* {
      const toml::node* node = reader.node(name);
      if (node == nullptr) {
        if (required)
          reader.fail(nullptr, name, "section is required");
        return nullptr;
      }
      if (!node->is_table())
        reader.fail(node, name, "must be a table");
      return node->as_table();
    };
    if (const toml::table* server = section("server", false)) {
      config.server = parse_server(reader.child(*server, "server"));
    }
    config.tls = parse_tls(reader.child(*section("tls", true), "tls"));
    if (const toml::table* log = section("log", false)) {
      config.log = parse_log(reader.child(*log, "log"));
    }
    if (const toml::table* audit = section("audit", false)) {
      config.audit = parse_audit(reader.child(*audit, "audit"));
    }
    // One HSM as [hsm], or a fleet as [[hsm]] tables.
    const toml::node* hsm = reader.node("hsm");
    if (hsm != nullptr && hsm->is_table()) {
      config.hsm.push_back(parse_hsm(reader.child(*hsm->as_table(), "hsm")));
    } else if (hsm != nullptr && hsm->is_array_of_tables() && !hsm->as_array()->empty()) {
      std::set<std::string> names;
      for (const toml::node& item : *hsm->as_array()) {
        config.hsm.push_back(parse_hsm(reader.child(*item.as_table(), "hsm")));
        const std::string& name = config.hsm.back().name;
        if (config.hsm.size() > 1 && name.empty())
          reader.fail(&item, "hsm", "each HSM of a fleet needs a name");
        if (!names.insert(name).second)
          reader.fail(&item, "hsm", "two HSMs are named '" + name + "'");
      }
      if (config.hsm.size() > 64)  // hsm::Fleet::kMaxMembers
        reader.fail(hsm, "hsm", "at most 64 HSMs");
    } else {
      reader.fail(hsm, "hsm", "add an [hsm] section, or [[hsm]] sections for a fleet");
    }
    const toml::node* stores = reader.node("keystore");
    if (stores == nullptr || !stores->is_array_of_tables() || stores->as_array()->empty()) {
      reader.fail(stores, "keystore", "add at least one [[keystore]]");
    }
    std::set<std::string> prefixes;
    for (const toml::node& item : *stores->as_array()) {
      auto store = parse_keystore(reader.child(*item.as_table(), "keystore"));
      if (!prefixes.insert(store.prefix).second) {
        reader.fail(&item, "keystore", "prefix '" + store.prefix + "' is used twice");
      }
      for (const HsmConfig& hsm_config : config.hsm) {
        if (std::find(store.keys.begin(), store.keys.end(), hsm_config.health_key) !=
            store.keys.end()) {
          reader.fail(item.as_table()->get("keys"), "keystore.keys",
                      "'" + hsm_config.health_key + "' is the HSM's health key: never served");
        }
      }
      config.keystores.push_back(std::move(store));
    }
    reader.finish();
    return config;
  } catch (const toml::parse_error& error) {
    return tl::unexpected(path + ":" + std::to_string(error.source().begin.line) + ": " +
                          std::string(error.description()));
  } catch (const ConfigError& error) {
    return tl::unexpected(std::string(error.what()));
  }
}

}  // namespace

tl::expected<Config, std::string> load_config(const std::string& path,
                                              const EnvironmentLookup& environment) {
  return read_config(path, environment, [&] { return toml::parse_file(path); });
}

tl::expected<ServerConfig, std::string> load_server_config(const std::string& path) {
  try {
    toml::table root = toml::parse_file(path);
    const EnvironmentLookup none;
    TableReader reader(root, "", path, none);
    const toml::node* server = reader.node("server");
    if (server == nullptr)
      return ServerConfig{};
    if (!server->is_table())
      reader.fail(server, "server", "must be a table");
    return parse_server(reader.child(*server->as_table(), "server"));
  } catch (const toml::parse_error& error) {
    return tl::unexpected(path + ":" + std::to_string(error.source().begin.line) + ": " +
                          std::string(error.description()));
  } catch (const ConfigError& error) {
    return tl::unexpected(std::string(error.what()));
  }
}

tl::expected<Config, std::string> parse_config(std::string_view text, const std::string& source) {
  return read_config(source, {}, [&] { return toml::parse(text, source); });
}

}  // namespace xks::proxy
