// Secondary authorization: globs, key lists, every rule condition, deny precedence, and the
// kill switch.
#include "xks/proxy/xks/authorization.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace xks::proxy {
namespace {

using Verdict = AuthorizationDecision::Verdict;
using wire::Operation;

TEST(GlobMatchTest, StarsAndQuestionMarks) {
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything:at/all"));
  EXPECT_TRUE(glob_match("arn:aws:iam::*:user/Mallory", "arn:aws:iam::123456789012:user/Mallory"));
  EXPECT_FALSE(glob_match("arn:aws:iam::*:user/Mallory", "arn:aws:iam::1:user/Mallory2"));
  EXPECT_FALSE(glob_match("arn:aws:iam::*:user/Mallory", "arn:aws:iam::1:user/mallory"));
  EXPECT_TRUE(glob_match("a?c", "abc"));
  EXPECT_FALSE(glob_match("a?c", "ac"));
  EXPECT_TRUE(glob_match("*b*b*", "abcbd"));
  EXPECT_FALSE(glob_match("*b*b*", "abcd"));
  EXPECT_TRUE(glob_match("a**", "a"));
  // Backtracking past a partial match.
  EXPECT_TRUE(glob_match("*aab", "aaaab"));
  EXPECT_TRUE(glob_match("*.amazonaws.com", "ebs.us-east-1.amazonaws.com"));
  // A '*' in the text is an ordinary character (requestMetadata may carry one).
  EXPECT_TRUE(glob_match("*", "*a"));
  EXPECT_TRUE(glob_match("arn:*", "arn:*x"));
  EXPECT_TRUE(glob_match("a*", "a*b"));
  EXPECT_TRUE(glob_match("*b", "**b"));
  EXPECT_FALSE(glob_match("a?c", "a*"));
}

// The textbook definition, by dynamic programming: the reference for the matchers above.
bool reference_match(std::string_view pattern, std::string_view text) {
  std::vector<std::vector<bool>> match(pattern.size() + 1,
                                       std::vector<bool>(text.size() + 1, false));
  match[0][0] = true;
  for (std::size_t p = 1; p <= pattern.size(); ++p) {
    for (std::size_t t = 0; t <= text.size(); ++t) {
      if (pattern[p - 1] == '*')
        match[p][t] = match[p - 1][t] || (t > 0 && match[p][t - 1]);
      else if (t > 0)
        match[p][t] =
            match[p - 1][t - 1] && (pattern[p - 1] == '?' || pattern[p - 1] == text[t - 1]);
    }
  }
  return match[pattern.size()][text.size()];
}

TEST(GlobMatchTest, BothMatchersAgreeWithTheDefinitionOnEveryShortString) {
  // Every string of up to 4 characters over a, b, * and ?, as pattern and as text.
  std::vector<std::string> strings = {""};
  for (std::size_t begin = 0, length = 1; length <= 4; ++length) {
    std::size_t end = strings.size();
    for (std::size_t i = begin; i < end; ++i) {
      for (char c : {'a', 'b', '*', '?'})
        strings.push_back(strings[i] + c);
    }
    begin = end;
  }
  for (const std::string& pattern : strings) {
    Glob glob(pattern);
    for (const std::string& text : strings) {
      bool expected = reference_match(pattern, text);
      ASSERT_EQ(glob_match(pattern, text), expected) << pattern << " / " << text;
      ASSERT_EQ(glob.matches(text), expected) << pattern << " / " << text;
    }
  }
}

class PolicyTest : public ::testing::Test {
 protected:
  AuthorizationDecision decide(const KeyStorePolicy& policy, Operation operation,
                               std::string_view key = "foo") {
    return policy.decide({operation, key, metadata_});
  }
  static AuthorizationRule rule(std::string id, bool deny) {
    AuthorizationRule rule;
    rule.id = std::move(id);
    rule.deny = deny;
    return rule;
  }

  KeyStoreConfig config_{.prefix = "/s",
                         .regions = {"us-east-1"},
                         .credentials = {},
                         .keys = {"foo", "bar", "tenant-?-*"},
                         .rules = {},
                         .quota = {},
                         .block = {},
                         .allow_unprotected_keys = false,
                         .aws_sample_metadata = {}};
  std::vector<std::string> health_keys_ = {"xks-health"};
  wire::RequestMetadata metadata_{.aws_principal_arn = "arn:aws:iam::111122223333:user/Alice",
                                  .kms_key_arn = "arn:aws:kms:eu-west-1:111122223333:key/k1",
                                  .kms_operation = "Encrypt",
                                  .kms_request_id = "r",
                                  .kms_via_service = "ebs.eu-west-1.amazonaws.com",
                                  .aws_source_vpc = "vpc-1",
                                  .aws_source_vpce = "vpce-1"};
};

TEST_F(PolicyTest, OnlyListedKeysAreServedAndNeverTheHealthKey) {
  KeyStorePolicy policy(config_, health_keys_);
  EXPECT_EQ(decide(policy, Operation::kEncrypt).verdict, Verdict::kAllowed);
  EXPECT_EQ(decide(policy, Operation::kEncrypt, "tenant-a-7").verdict, Verdict::kAllowed);
  EXPECT_EQ(decide(policy, Operation::kEncrypt, "tenant-ab-7").verdict, Verdict::kKeyNotServed);
  EXPECT_EQ(decide(policy, Operation::kEncrypt, "baz").verdict, Verdict::kKeyNotServed);
  config_.keys = {"*"};
  KeyStorePolicy everything(config_, health_keys_);
  EXPECT_EQ(decide(everything, Operation::kEncrypt, "baz").verdict, Verdict::kAllowed);
  EXPECT_EQ(decide(everything, Operation::kEncrypt, "xks-health").verdict, Verdict::kKeyNotServed);
  config_.keys = {};
  KeyStorePolicy nothing(config_, health_keys_);
  EXPECT_EQ(decide(nothing, Operation::kEncrypt).verdict, Verdict::kKeyNotServed);
}

TEST_F(PolicyTest, EachConditionNarrowsARule) {
  using Field = std::vector<std::string> AuthorizationRule::*;
  const std::pair<Field, std::string> conditions[] = {
      {&AuthorizationRule::key_ids, "foo"},
      {&AuthorizationRule::kms_operations, "Encrypt"},
      {&AuthorizationRule::principals, "arn:aws:iam::*:user/Alice"},
      {&AuthorizationRule::kms_key_arns, "arn:aws:kms:eu-west-1:*"},
      {&AuthorizationRule::via_services, "ebs.*"},
      {&AuthorizationRule::source_vpcs, "vpc-1"},
      {&AuthorizationRule::source_vpces, "vpce-?"},
  };
  for (const auto& [field, pattern] : conditions) {
    AuthorizationRule deny = rule("d", true);
    deny.*field = {pattern};
    config_.rules = {deny};
    KeyStorePolicy matching(config_, health_keys_);
    AuthorizationDecision decided = decide(matching, Operation::kEncrypt);
    EXPECT_EQ(decided.verdict, Verdict::kDenied) << pattern;
    EXPECT_EQ(KeyStorePolicy::label(decided), "d");
    deny.*field = {pattern + "-other"};
    config_.rules = {deny};
    KeyStorePolicy other(config_, health_keys_);
    EXPECT_EQ(decide(other, Operation::kEncrypt).verdict, Verdict::kAllowed) << pattern;
  }
  AuthorizationRule by_operation = rule("d", true);
  by_operation.operations = {"Decrypt", "GetKeyMetadata"};
  config_.rules = {by_operation};
  KeyStorePolicy policy(config_, health_keys_);
  EXPECT_EQ(decide(policy, Operation::kEncrypt).verdict, Verdict::kAllowed);
  EXPECT_EQ(decide(policy, Operation::kDecrypt).verdict, Verdict::kDenied);
  EXPECT_EQ(decide(policy, Operation::kGetKeyMetadata).verdict, Verdict::kDenied);
}

TEST_F(PolicyTest, AnEmptyPatternMatchesAFieldTheRequestDoesNotCarry) {
  AuthorizationRule direct = rule("direct-only", false);
  direct.via_services = {""};
  config_.rules = {direct};
  KeyStorePolicy policy(config_, health_keys_);
  EXPECT_EQ(decide(policy, Operation::kEncrypt).verdict, Verdict::kDenied);  // via EBS
  metadata_.kms_via_service.clear();
  EXPECT_EQ(decide(policy, Operation::kEncrypt).verdict, Verdict::kAllowed);
}

TEST_F(PolicyTest, DenyWinsWhereverItStandsAndAllowRulesMustMatch) {
  AuthorizationRule allow_all = rule("allow-all", false);
  AuthorizationRule no_alice = rule("no-alice", true);
  no_alice.principals = {"*/Alice"};
  for (auto rules : {std::vector{allow_all, no_alice}, std::vector{no_alice, allow_all}}) {
    config_.rules = rules;
    KeyStorePolicy policy(config_, health_keys_);
    AuthorizationDecision decided = decide(policy, Operation::kEncrypt);
    EXPECT_EQ(decided.verdict, Verdict::kDenied);
    EXPECT_EQ(KeyStorePolicy::label(decided), "no-alice");
  }
  // With allow rules, a request none matches is refused; the first match is named.
  AuthorizationRule bob = rule("bob", false);
  bob.principals = {"*/Bob"};
  AuthorizationRule alice = rule("alice", false);
  alice.principals = {"*/Alice"};
  config_.rules = {bob};
  KeyStorePolicy only_bob(config_, health_keys_);
  AuthorizationDecision refused = decide(only_bob, Operation::kEncrypt);
  EXPECT_EQ(refused.verdict, Verdict::kDenied);
  EXPECT_EQ(KeyStorePolicy::label(refused), kNoAllowRuleLabel);
  config_.rules = {bob, alice, allow_all};
  KeyStorePolicy both(config_, health_keys_);
  AuthorizationDecision allowed = decide(both, Operation::kEncrypt);
  EXPECT_EQ(allowed.verdict, Verdict::kAllowed);
  EXPECT_EQ(KeyStorePolicy::label(allowed), "alice");
  // Only deny rules: the rest is allowed, and no rule is named.
  config_.rules = {no_alice};
  metadata_.aws_principal_arn = "arn:aws:iam::1:user/Carol";
  KeyStorePolicy deny_only(config_, health_keys_);
  AuthorizationDecision carol = decide(deny_only, Operation::kEncrypt);
  EXPECT_EQ(carol.verdict, Verdict::kAllowed);
  EXPECT_EQ(KeyStorePolicy::label(carol), "");
}

TEST_F(PolicyTest, ABlockedKeyStoreRefusesEveryKeyFirst) {
  config_.block.blocked = true;
  KeyStorePolicy policy(config_, health_keys_);
  for (std::string_view key : {"foo", "not-listed"}) {
    AuthorizationDecision decided = decide(policy, Operation::kGetKeyMetadata, key);
    EXPECT_EQ(decided.verdict, Verdict::kBlocked);
    EXPECT_EQ(KeyStorePolicy::label(decided), kBlockedLabel);
  }
}

}  // namespace
}  // namespace xks::proxy
