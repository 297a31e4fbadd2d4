// kms-console.json and scenario parsing, strict: unknown or mistyped fields are named.
#include "run_inputs.h"

#include <toml++/toml.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace xks::load {

namespace {

constexpr std::string_view kApiPath = "/kms/xks/v1";
constexpr double kMaxScenarioSeconds = 3600;

tl::unexpected<std::string> fail(std::string what) {
  return tl::unexpected(std::move(what));
}

}  // namespace

tl::expected<KmsConsoleSettings, std::string> parse_kms_console(std::string_view json) {
  boost::system::error_code error;
  boost::json::value document = boost::json::parse(json, error);
  if (error)
    return fail("kms-console.json is not JSON: " + error.message());
  const auto* root = document.if_object();
  if (!root)
    return fail("kms-console.json: expected an object");
  auto text = [](const boost::json::object& object,
                 std::string_view name) -> tl::expected<std::string, std::string> {
    auto it = object.find(name);
    if (it == object.end() || !it->value().is_string() || it->value().get_string().empty())
      return fail("kms-console.json: " + std::string(name) + " must be a non-empty string");
    return std::string(it->value().get_string());
  };
  KmsConsoleSettings settings;
  auto path = text(*root, "XksProxyUriPath");
  if (!path)
    return fail(path.error());
  if (path->size() < kApiPath.size() || !path->ends_with(kApiPath) || path->front() != '/')
    return fail("kms-console.json: XksProxyUriPath must be /<prefix>/kms/xks/v1");
  settings.uri_prefix = path->substr(0, path->size() - kApiPath.size());
  auto credential_it = root->find("XksProxyAuthenticationCredential");
  if (credential_it == root->end() || !credential_it->value().is_object())
    return fail("kms-console.json: XksProxyAuthenticationCredential must be an object");
  const auto& credential = credential_it->value().get_object();
  auto key_id = text(credential, "AccessKeyId");
  auto secret = text(credential, "RawSecretAccessKey");
  if (!key_id)
    return fail(key_id.error());
  if (!secret)
    return fail(secret.error());
  settings.access_key_id = *key_id;
  settings.secret_access_key = *secret;
  if (root->contains("XksProxyUriEndpoint")) {
    auto endpoint = text(*root, "XksProxyUriEndpoint");
    if (!endpoint)
      return fail(endpoint.error());
    constexpr std::string_view kScheme = "https://";
    std::string_view rest(*endpoint);
    if (!rest.starts_with(kScheme))
      return fail("kms-console.json: XksProxyUriEndpoint must start with https://");
    rest.remove_prefix(kScheme.size());
    if (!rest.empty() && rest.back() == '/')
      rest.remove_suffix(1);
    auto colon = rest.rfind(':');
    settings.endpoint_host = std::string(rest.substr(0, colon));
    settings.endpoint_port =
        colon == std::string_view::npos ? "443" : std::string(rest.substr(colon + 1));
    if (settings.endpoint_host.empty() || settings.endpoint_port.empty() ||
        settings.endpoint_host.find('/') != std::string::npos ||
        settings.endpoint_port.find_first_not_of("0123456789") != std::string::npos)
      return fail("kms-console.json: XksProxyUriEndpoint must be https://host[:port]");
  }
  return settings;
}

tl::expected<std::vector<Phase>, std::string> parse_scenario(std::string_view text) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& error) {
    return fail("scenario line " + std::to_string(error.source().begin.line) + ": " +
                std::string(error.description()));
  }
  for (const auto& [key, value] : root) {
    if (key.str() != "phase")
      return fail("scenario: unknown key " + std::string(key.str()));
  }
  const toml::array* phases = root["phase"].as_array();
  if (!phases || phases->empty())
    return fail("scenario: no [[phase]]");
  std::vector<Phase> out;
  double total = 0;
  for (const toml::node& node : *phases) {
    const toml::table* table = node.as_table();
    std::string where = "scenario phase " + std::to_string(out.size() + 1);
    if (!table)
      return fail(where + ": expected a table");
    Phase phase;
    for (const auto& [key, value] : *table) {
      if (key.str() == "name" && value.is_string()) {
        phase.name = *value.value<std::string>();
      } else if (key.str() == "seconds" && (value.is_number())) {
        phase.seconds = *value.value<double>();
      } else if (key.str() == "faults" && value.is_array()) {
        for (const toml::node& line : *value.as_array()) {
          auto fault = line.value<std::string>();
          if (!line.is_string() || fault->empty() || fault->find('\n') != std::string::npos)
            return fail(where + ": faults must be one-line strings");
          phase.faults.push_back(*fault);
        }
      } else {
        return fail(where + ": unknown or mistyped key " + std::string(key.str()));
      }
    }
    if (phase.name.empty())
      return fail(where + ": name is required");
    if (!(phase.seconds > 0) || phase.seconds > kMaxScenarioSeconds)
      return fail(where + ": seconds must be in (0, 3600]");
    total += phase.seconds;
    out.push_back(std::move(phase));
  }
  if (total > kMaxScenarioSeconds)
    return fail("scenario: phases add up to more than 3600 s");
  return out;
}

}  // namespace xks::load
