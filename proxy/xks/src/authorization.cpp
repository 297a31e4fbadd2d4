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
    // A '*' in the pattern is a wildcard even where the text holds a '*' too.
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
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

Glob::Glob(std::string pattern) : pattern_(std::move(pattern)) {
  std::size_t first = pattern_.find_first_of("*?");
  if (first == std::string::npos)
    return;
  literal_ = false;
  head_ = first;
  tail_ = pattern_.size() - pattern_.find_last_of("*?") - 1;
}

bool Glob::matches(std::string_view text) const {
  if (literal_)
    return text == pattern_;
  std::string_view pattern(pattern_);
  if (text.size() < head_ + tail_ || text.substr(0, head_) != pattern.substr(0, head_) ||
      text.substr(text.size() - tail_) != pattern.substr(pattern.size() - tail_))
    return false;
  return glob_match(pattern.substr(head_, pattern.size() - head_ - tail_),
                    text.substr(head_, text.size() - head_ - tail_));
}

namespace {

bool is_pattern(std::string_view key) {
  return key.find_first_of("*?") != std::string_view::npos;
}

// An absent condition matches anything.
bool matches(const std::vector<Glob>& patterns, std::string_view value) {
  return patterns.empty() || std::any_of(patterns.begin(), patterns.end(),
                                         [&](const Glob& glob) { return glob.matches(value); });
}

// The conditions other than the operation, in PreparedRule::conditions order.
constexpr std::array<std::string_view, 7> kConditionNames = {
    "key_ids",      "kms_operations", "principals",  "kms_key_arns",
    "via_services", "source_vpcs",    "source_vpces"};
constexpr std::array<std::vector<std::string> AuthorizationRule::*, 7> kConditionFields = {
    &AuthorizationRule::key_ids,      &AuthorizationRule::kms_operations,
    &AuthorizationRule::principals,   &AuthorizationRule::kms_key_arns,
    &AuthorizationRule::via_services, &AuthorizationRule::source_vpcs,
    &AuthorizationRule::source_vpces};

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
      key_patterns_.emplace_back(key);
    else
      exact_keys_.insert(key);
  }
  for (const AuthorizationRule& rule : rules_) {
    PreparedRule prepared;
    for (wire::Operation operation : wire::kOperations) {
      if (std::find(rule.operations.begin(), rule.operations.end(),
                    wire::operation_name(operation)) != rule.operations.end())
        prepared.operations |= operation_bit(operation);
    }
    for (std::size_t i = 0; i < kConditionFields.size(); ++i) {
      for (const std::string& pattern : rule.*kConditionFields[i])
        prepared.conditions[i].emplace_back(pattern);
    }
    prepared_.push_back(std::move(prepared));
    has_allow_rules_ = has_allow_rules_ || !rule.deny;
  }
}

bool KeyStorePolicy::serves(std::string_view key_id) const {
  if (health_keys_.contains(key_id))
    return false;
  return exact_keys_.contains(key_id) ||
         std::any_of(key_patterns_.begin(), key_patterns_.end(),
                     [&](const Glob& pattern) { return pattern.matches(key_id); });
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
  const PreparedRule& rule = prepared_[index];
  if (rule.operations != 0 && (rule.operations & operation_bit(request.operation)) == 0)
    return "operations";
  const wire::RequestMetadata& m = request.metadata;
  const std::array<std::string_view, 7> values = {
      request.key_id,    m.kms_operation,  m.aws_principal_arn, m.kms_key_arn,
      m.kms_via_service, m.aws_source_vpc, m.aws_source_vpce};
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!matches(rule.conditions[i], values[i]))
      return kConditionNames[i];
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
