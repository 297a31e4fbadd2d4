// `xks-proxy keys` as an operator runs it: the real binary against a real SoftHSM token.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "softhsm_token.h"
#include "subprocess.h"

namespace xks {
namespace {

// The columns after `label` on its line of `keys list` output, joined by single spaces.
std::string columns(const std::string& listing, const std::string& label) {
  std::istringstream lines(listing);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string first, word, rest;
    if (!(words >> first) || first != label)
      continue;
    while (words >> word)
      rest += (rest.empty() ? "" : " ") + word;
    return rest;
  }
  return "(no line for " + label + ")";
}

class KeysCommandTest : public testing::Test {
 protected:
  KeysCommandTest() { std::ofstream(pin_file_) << token_.user_pin() << "\n"; }

  test::CommandResult keys(const std::string& arguments) {
    return test::run_command(std::string(XKS_PROXY_BINARY) + " keys " + arguments +
                             " --token-label " + token_.label() + " --pin-file " + pin_file_ +
                             " 2>&1");
  }

  test::SoftHsmToken token_;
  std::string pin_file_ = (token_.dir() / "pin").string();
};

TEST_F(KeysCommandTest, CreatesKeysOfEachUsageAndListsThem) {
  for (const char* usage : {"encrypt,decrypt", "encrypt", "decrypt", "none"}) {
    auto created = keys(std::string("create --label key-") + usage + " --usage " + usage);
    EXPECT_EQ(created.exit_code, 0) << created.output;
  }
  auto listed = keys("list");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  // VERSION STATE TYPE USAGE CREATED ENCRYPTIONS PROTECTION
  auto expect_line = [&](const std::string& label, const std::string& state_type_usage) {
    std::string line = columns(listed.output, label);
    std::size_t protection = line.rfind(' ');
    std::size_t encryptions = line.rfind(' ', protection - 1);
    std::size_t created = line.rfind(' ', encryptions - 1);
    EXPECT_EQ(line.substr(0, created), "1 " + state_type_usage) << line;
    EXPECT_EQ(line.substr(encryptions, protection - encryptions), " 0") << line;
    EXPECT_TRUE(line.ends_with(" sensitive,not-extractable,always-sensitive,never-extractable"))
        << line;
  };
  expect_line("key-encrypt,decrypt", "active AES-256 ENCRYPT,DECRYPT");
  expect_line("key-encrypt", "active AES-256 ENCRYPT");
  expect_line("key-decrypt", "decrypt-only AES-256 DECRYPT");
  expect_line("key-none", "unusable AES-256 -");
  EXPECT_EQ(listed.output.find(token_.user_pin()), std::string::npos) << "PIN printed";
}

TEST_F(KeysCommandTest, RefusesADuplicateLabelAndBadUsage) {
  EXPECT_EQ(keys("create --label foo").exit_code, 0);
  auto again = keys("create --label foo");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("exists already"), std::string::npos) << again.output;
  auto bad = keys("create --label bar --usage sign");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--usage must be"), std::string::npos) << bad.output;
}

TEST_F(KeysCommandTest, NamesAWrongPinWithoutPrintingIt) {
  std::ofstream(pin_file_) << "99999999\n";
  auto refused = keys("list");
  ASSERT_NE(refused.output.find("C_Login"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.output.find("CKR_PIN_INCORRECT"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("99999999"), std::string::npos);
}

}  // namespace
}  // namespace xks
