// Secondary authorization of XKS requests (README "Access control"): which keys a key store
// serves, what its rules allow, and its kill switch. Decisions only, no I/O: the request path
// and `xks-proxy authz explain` share them.
//
// Order: a blocked key store refuses every key operation; a key it does not list is not
// served (KeyNotFoundException, as for a key the HSM lacks); then the rules: a matching deny
// rule refuses, whatever its place; otherwise, when the key store has allow rules, one must
// match; with no allow rule, what no deny rule matches is allowed. GetHealthStatus is never
// gated and never reaches here.
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "xks/proxy/config/config.h"
#include "xks/wire/operation.h"
#include "xks/wire/request_metadata.h"

namespace xks::proxy {

// `*` matches any run of characters (also none), `?` exactly one; any other character itself.
// Case-sensitive.
bool glob_match(std::string_view pattern, std::string_view text);

// A pattern prepared for matching many texts: its literal head and tail are compared first,
// so that most texts that do not match are told apart in a few compares.
class Glob {
 public:
  explicit Glob(std::string pattern);
  bool matches(std::string_view text) const;

 private:
  std::string pattern_;
  std::size_t head_ = 0;  // characters before the first wildcard
  std::size_t tail_ = 0;  // characters after the last wildcard
  bool literal_ = true;   // no wildcard
};

struct AuthorizationRequest {
  wire::Operation operation;  // Encrypt, Decrypt or GetKeyMetadata
  std::string_view key_id;
  const wire::RequestMetadata& metadata;
};

struct AuthorizationDecision {
  enum class Verdict : std::uint8_t {
    kAllowed,
    kKeyNotServed,  // not listed, or an HSM's health key: KeyNotFoundException
    kBlocked,       // the kill switch: AccessDeniedException
    kDenied,        // a deny rule, or no allow rule matched: AccessDeniedException
  };
  Verdict verdict = Verdict::kAllowed;
  // The rule that decided (the deny rule, or the first matching allow rule); null when no rule
  // did (no rules, no allow rule matched, blocked, key not served).
  const AuthorizationRule* rule = nullptr;
};

// What the metrics and the audit log name when no rule decided a refusal.
inline constexpr std::string_view kBlockedLabel = "(blocked)";
inline constexpr std::string_view kNoAllowRuleLabel = "(no allow rule)";

class KeyStorePolicy {
 public:
  // `health_keys` are never served, whatever `config.keys` says.
  KeyStorePolicy(const KeyStoreConfig& config, const std::vector<std::string>& health_keys);

  AuthorizationDecision decide(const AuthorizationRequest& request) const;
  bool serves(std::string_view key_id) const;
  // Why rules()[index] does not apply to `request`: the first condition that fails
  // ("operations", "key_ids", "principals"...), or "" when it applies.
  std::string_view mismatch(std::size_t index, const AuthorizationRequest& request) const;
  bool blocked() const { return block_.blocked; }
  const BlockConfig& block() const { return block_; }
  const std::vector<AuthorizationRule>& rules() const { return rules_; }
  // The metric label and audit field of a decision: the rule id, or the labels above.
  static std::string_view label(const AuthorizationDecision& decision);

 private:
  // Ordered sets: looked up by string_view, without a copy per request.
  std::set<std::string, std::less<>> exact_keys_;
  std::vector<Glob> key_patterns_;
  std::set<std::string, std::less<>> health_keys_;
  // A rule's conditions prepared: the operations as bits (0: any), then each pattern list in
  // the order of kConditionNames (empty: any).
  struct PreparedRule {
    std::uint8_t operations = 0;
    std::array<std::vector<Glob>, 7> conditions;
  };
  std::vector<AuthorizationRule> rules_;
  std::vector<PreparedRule> prepared_;
  bool has_allow_rules_ = false;
  BlockConfig block_;
};

}  // namespace xks::proxy
