// Explaining authorization decisions with the proxy's own policy code.
//
// The request file is either a request as KMS sends it, {"path": "<URI path>", "body": {...}},
// or one record of the audit log (which names keystore, externalKeyId, operation and the
// requestMetadata fields). Exit status: 0 allowed, 1 refused, 2 the input is wrong.
#include "authz_command.h"

#include <boost/json.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "xks/proxy/config/config.h"
#include "xks/proxy/xks/authorization.h"
#include "xks/proxy/xks/router.h"

namespace xks::proxy {

namespace {

namespace json = boost::json;

struct ExplainedRequest {
  std::string keystore;
  wire::Operation operation = wire::Operation::kGetHealthStatus;
  std::string key_id;
  wire::RequestMetadata metadata;
};

std::string string_member(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

void read_metadata(const json::object& fields, wire::RequestMetadata& metadata) {
  for (const wire::RequestMetadataField& field : wire::kRequestMetadataFields)
    metadata.*field.member = string_member(fields, field.name);
}

tl::expected<ExplainedRequest, std::string> read_request(const std::string& path,
                                                         const Config& config) {
  std::ifstream file(path);
  if (!file)
    return tl::unexpected("cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  boost::system::error_code error;
  json::value parsed = json::parse(text.str(), error);
  if (error || !parsed.is_object())
    return tl::unexpected(path + ": not a JSON object");
  const json::object& object = parsed.as_object();
  ExplainedRequest request;
  if (object.contains("path")) {
    std::vector<std::string> prefixes;
    for (const KeyStoreConfig& store : config.keystores)
      prefixes.push_back(store.prefix);
    std::string uri = string_member(object, "path");
    auto found = route(uri, prefixes);
    if (!found)
      return tl::unexpected("'" + uri + "' is no XKS API path of a configured key store");
    request.keystore = prefixes[found->keystore];
    request.operation = found->operation;
    request.key_id = std::string(found->key_id);
    const json::value* body = object.if_contains("body");
    if (body == nullptr || !body->is_object() || !body->as_object().contains("requestMetadata") ||
        !body->as_object().at("requestMetadata").is_object()) {
      return tl::unexpected(path + ": \"body\" must hold the request's requestMetadata");
    }
    read_metadata(body->as_object().at("requestMetadata").as_object(), request.metadata);
    return request;
  }
  if (object.contains("externalKeyId")) {  // an audit record
    request.keystore = string_member(object, "keystore");
    request.key_id = string_member(object, "externalKeyId");
    std::string operation = string_member(object, "operation");
    bool known = false;
    for (wire::Operation candidate : wire::kOperations) {
      if (wire::operation_name(candidate) == operation) {
        request.operation = candidate;
        known = true;
      }
    }
    if (!known)
      return tl::unexpected(path + ": unknown operation '" + operation + "'");
    read_metadata(object, request.metadata);
    return request;
  }
  return tl::unexpected(path + ": expected {\"path\": ..., \"body\": ...} or an audit log record");
}

int explain(const std::string& config_path, const std::string& request_path) {
  auto config = load_config(config_path);
  if (!config) {
    std::cerr << "xks-proxy authz explain: " << config.error() << "\n";
    return 2;
  }
  auto request = read_request(request_path, *config);
  if (!request) {
    std::cerr << "xks-proxy authz explain: " << request.error() << "\n";
    return 2;
  }
  const KeyStoreConfig* store = nullptr;
  for (const KeyStoreConfig& candidate : config->keystores) {
    if (candidate.prefix == request->keystore)
      store = &candidate;
  }
  if (store == nullptr) {
    std::cerr << "xks-proxy authz explain: no key store '" << request->keystore << "' in "
              << config_path << "\n";
    return 2;
  }
  std::string name = store->prefix.empty() ? "/" : store->prefix;
  std::cout << "key store " << name << ", " << wire::operation_name(request->operation);
  if (request->operation == wire::Operation::kGetHealthStatus) {
    std::cout << ": ALLOWED (GetHealthStatus is never gated)\n";
    return 0;
  }
  std::cout << ", key " << request->key_id << "\n";
  std::vector<std::string> health_keys;
  for (const HsmConfig& hsm : config->hsm)
    health_keys.push_back(hsm.health_key);
  KeyStorePolicy policy(*store, health_keys);
  AuthorizationRequest asked{request->operation, request->key_id, request->metadata};
  for (std::size_t i = 0; i < policy.rules().size(); ++i) {
    const AuthorizationRule& rule = policy.rules()[i];
    std::string_view mismatch = policy.mismatch(i, asked);
    std::cout << "  rule " << rule.id << " (" << (rule.deny ? "deny" : "allow") << "): "
              << (mismatch.empty() ? std::string("applies")
                                   : "does not apply (" + std::string(mismatch) + ")")
              << "\n";
  }
  using Verdict = AuthorizationDecision::Verdict;
  AuthorizationDecision decision = policy.decide(asked);
  switch (decision.verdict) {
    case Verdict::kAllowed:
      std::cout << "ALLOWED"
                << (decision.rule != nullptr ? " by rule " + decision.rule->id
                    : policy.rules().empty() ? std::string(": the key store has no rules")
                                             : std::string(": no deny rule applies"))
                << " (the quota, if any, still applies)\n";
      return 0;
    case Verdict::kKeyNotServed:
      std::cout << "REFUSED: 404 KeyNotFoundException: the key store does not list key '"
                << request->key_id << "'\n";
      return 1;
    case Verdict::kBlocked:
      std::cout << "REFUSED: 403 AccessDeniedException: the key store is blocked"
                << (store->block.by.empty() ? "" : " by " + store->block.by) << "\n";
      return 1;
    case Verdict::kDenied:
      std::cout << "REFUSED: 403 AccessDeniedException "
                << (decision.rule != nullptr ? "by deny rule " + decision.rule->id
                                             : std::string("(no allow rule applies)"))
                << "\n";
      return 1;
  }
  return 2;
}

}  // namespace

void add_authz_command(CLI::App& app, int& exit_code) {
  CLI::App* authz = app.add_subcommand("authz", "Key store authorization rules");
  authz->require_subcommand(1);
  auto paths = std::make_shared<std::pair<std::string, std::string>>();  // config, request
  CLI::App* command = authz->add_subcommand(
      "explain",
      "Show which rule decides a request ({\"path\", \"body\"} as KMS sends it, or an audit "
      "record); exit 0 allowed, 1 refused");
  command->add_option("--config", paths->first, "The proxy's TOML configuration")->required();
  command->add_option("--request", paths->second, "The request, as JSON")->required();
  command->callback([paths, &exit_code] { exit_code = explain(paths->first, paths->second); });
}

}  // namespace xks::proxy
