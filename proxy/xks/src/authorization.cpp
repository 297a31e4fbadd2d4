// Secondary authorization decisions.
#include "xks/proxy/xks/authorization.h"

#include <algorithm>

namespace xks::proxy {

bool glob_match(std::string_view pattern, std::string_view text) {
  // Greedy with one backtrack point (the last '*'): linear in practice, O(n*m) at worst, and
  // both are short (key ids, ARNs).
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

namespace {

bool is_pattern(std::string_view key) {
  return key.find_first_of("*?") != std::string_view::npos;
}

// An absent condition matches anything.
bool matches(const std::vector<std::string>& patterns, std::string_view value) {
  return patterns.empty() || std::any_of(patterns.begin(), patterns.end(),
                                         [&](const auto& p) { return glob_match(p, value); });
}

std::uint8_t operation_bit(wire::Operation operation) {
  return static_cast<std::uint8_t>(1u << static_cast<unsigned>(operation));
}

}  // namespace

KeyStorePolicy::KeyStorePolicy(const KeyStoreConfig& config,
                               const std::vector<std::string>& health_keys)
    : health_keys_(health_keys.begin(), health_keys.end()),
      rules_(config.rules),
      block_(config.block) {
  for (const std::string& key : config.keys) {
    if (is_pattern(key))
      key_patterns_.push_back(key);
    else
      exact_keys_.insert(key);
  }
  for (const AuthorizationRule& rule : rules_) {
    std::uint8_t bits = 0;
    for (wire::Operation operation : wire::kOperations) {
      if (std::find(rule.operations.begin(), rule.operations.end(),
                    wire::operation_name(operation)) != rule.operations.end())
        bits |= operation_bit(operation);
    }
    rule_operations_.push_back(bits);
    has_allow_rules_ = has_allow_rules_ || !rule.deny;
  }
}

bool KeyStorePolicy::serves(std::string_view key_id) const {
  if (health_keys_.contains(key_id))
    return false;
  return exact_keys_.contains(key_id) ||
         std::any_of(key_patterns_.begin(), key_patterns_.end(),
                     [&](const std::string& pattern) { return glob_match(pattern, key_id); });
}

AuthorizationDecision KeyStorePolicy::decide(const AuthorizationRequest& request) const {
  using Verdict = AuthorizationDecision::Verdict;
  if (block_.blocked)
    return {Verdict::kBlocked, nullptr};
  if (!serves(request.key_id))
    return {Verdict::kKeyNotServed, nullptr};
  const AuthorizationRule* allowed_by = nullptr;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const AuthorizationRule& rule = rules_[i];
    if (!rule.deny && allowed_by != nullptr)
      continue;  // an allow rule already matched: only a deny can change the answer
    if (!mismatch(i, request).empty())
      continue;
    if (rule.deny)
      return {Verdict::kDenied, &rule};
    allowed_by = &rule;
  }
  if (allowed_by != nullptr || !has_allow_rules_)
    return {Verdict::kAllowed, allowed_by};
  return {Verdict::kDenied, nullptr};
}

std::string_view KeyStorePolicy::mismatch(std::size_t index,
                                          const AuthorizationRequest& request) const {
  const AuthorizationRule& rule = rules_[index];
  const wire::RequestMetadata& m = request.metadata;
  if (rule_operations_[index] != 0 &&
      (rule_operations_[index] & operation_bit(request.operation)) == 0)
    return "operations";
  const std::pair<const std::vector<std::string>*, std::string_view> conditions[] = {
      {&rule.key_ids, request.key_id},         {&rule.kms_operations, m.kms_operation},
      {&rule.principals, m.aws_principal_arn}, {&rule.kms_key_arns, m.kms_key_arn},
      {&rule.via_services, m.kms_via_service}, {&rule.source_vpcs, m.aws_source_vpc},
      {&rule.source_vpces, m.aws_source_vpce},
  };
  constexpr std::string_view kNames[] = {"key_ids",      "kms_operations", "principals",
                                         "kms_key_arns", "via_services",   "source_vpcs",
                                         "source_vpces"};
  for (std::size_t i = 0; i < std::size(conditions); ++i) {
    if (!matches(*conditions[i].first, conditions[i].second))
      return kNames[i];
  }
  return {};
}

std::string_view KeyStorePolicy::label(const AuthorizationDecision& decision) {
  if (decision.rule != nullptr)
    return decision.rule->id;
  switch (decision.verdict) {
    case AuthorizationDecision::Verdict::kBlocked:
      return kBlockedLabel;
    case AuthorizationDecision::Verdict::kDenied:
      return kNoAllowRuleLabel;
    case AuthorizationDecision::Verdict::kAllowed:
    case AuthorizationDecision::Verdict::kKeyNotServed:
      break;
  }
  return {};
}

}  // namespace xks::proxy
