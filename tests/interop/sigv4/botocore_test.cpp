// Cross-check against botocore's SigV4Auth, an independent implementation: random XKS requests
// signed by botocore must verify, our Signer must produce botocore's exact Authorization
// header, and any tampering must be caught.
#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "owned_request.h"
#include "subprocess.h"
#include "xks/sigv4/canonical.h"
#include "xks/sigv4/signer.h"
#include "xks/sigv4/verifier.h"

namespace xks::sigv4 {
namespace {

constexpr int kRequests = 400;

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

struct BotocoreRequest {
  Credential credential;
  std::string region;
  std::string amz_date;
  std::string authorization;
  test::OwnedRequest request;  // with every header botocore sent, Authorization included
};

std::vector<BotocoreRequest> botocore_requests(unsigned seed) {
  auto result = test::run_command("/usr/bin/python3 " XKS_TEST_SUPPORT_DIR "/botocore_sign.py " +
                                  std::to_string(kRequests) + " " + std::to_string(seed));
  EXPECT_EQ(result.exit_code, 0);
  std::vector<BotocoreRequest> requests;
  std::istringstream lines(result.output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string word; words >> word;)
      fields.push_back(from_hex(word));
    if (fields.size() < 8 || fields.size() % 2 != 0) {
      ADD_FAILURE() << "bad line from botocore_sign.py: " << line;
      continue;
    }
    BotocoreRequest r{{fields[0], fields[1]}, fields[2], fields[6], fields[7], {}};
    r.request.method = fields[3];
    r.request.path = fields[4];
    r.request.body = fields[5];
    for (std::size_t i = 8; i < fields.size(); i += 2) {
      r.request.headers.emplace_back(fields[i], fields[i + 1]);
    }
    requests.push_back(std::move(r));
  }
  return requests;
}

// What a failure message shows of a request: enough to reproduce it, no secret.
std::string describe(const BotocoreRequest& r) {
  std::string out = r.request.method + " " + r.request.path + "\n";
  for (const auto& [name, value] : r.request.headers)
    out += name + ": " + value + "\n";
  return out + "\n" + r.request.body;
}

class BotocoreCrossCheck : public testing::Test {
 protected:
  void SetUp() override {
    unsigned seed = std::random_device{}();
    RecordProperty("seed", std::to_string(seed));
    std::cout << "botocore_sign.py seed " << seed << "\n";
    requests_ = botocore_requests(seed);
    ASSERT_EQ(requests_.size(), static_cast<std::size_t>(kRequests));
  }

  static Verifier verifier_for(const BotocoreRequest& r, std::chrono::seconds clock_offset) {
    auto signed_at = *parse_amz_date(r.amz_date);
    // A second, unrelated credential makes the lookup choose among several (rotation).
    return Verifier(
        {{"AKIAOTHEROTHEROTHER2", "another-secret-another-secret-another-secret"}, r.credential},
        {"il-central-1", r.region}, [signed_at, clock_offset] { return signed_at + clock_offset; });
  }

  std::vector<BotocoreRequest> requests_;
};

TEST_F(BotocoreCrossCheck, OurVerifierAcceptsEveryBotocoreSignature) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> skew(-300, 300);
  for (auto& r : requests_) {
    Verifier verifier = verifier_for(r, std::chrono::seconds{skew(rng)});
    auto result = verifier.verify(r.request.view());
    ASSERT_TRUE(result.has_value()) << failure_name(result.error()) << "\n" << describe(r);
    EXPECT_EQ(result->get().access_key_id, r.credential.access_key_id);
  }
}

TEST_F(BotocoreCrossCheck, OurSignerProducesBotocoresExactAuthorization) {
  for (auto& r : requests_) {
    test::OwnedRequest unsigned_request = r.request;
    unsigned_request.remove_header("Authorization");
    Signer signer(r.credential, r.region, "kms-xks-proxy");
    EXPECT_EQ(signer.authorization(unsigned_request.view(), r.amz_date), r.authorization)
        << describe(r);
  }
}

TEST_F(BotocoreCrossCheck, TamperingWithAnySignedPartIsCaught) {
  for (auto& r : requests_) {
    Verifier verifier = verifier_for(r, std::chrono::seconds{0});
    test::OwnedRequest tampered = r.request;
    tampered.body.push_back(' ');
    auto body = verifier.verify(tampered.view());
    ASSERT_FALSE(body.has_value());
    EXPECT_EQ(body.error(), Failure::kSignatureMismatch);

    tampered = r.request;
    tampered.path.back() = tampered.path.back() == 't' ? 'u' : 't';
    auto path = verifier.verify(tampered.view());
    ASSERT_FALSE(path.has_value());
    EXPECT_EQ(path.error(), Failure::kSignatureMismatch);

    tampered = r.request;
    for (auto& [name, value] : tampered.headers) {
      if (name == "Host" || name == "host")
        value = "evil.example.com";
    }
    auto host = verifier.verify(tampered.view());
    ASSERT_FALSE(host.has_value());
    EXPECT_EQ(host.error(), Failure::kSignatureMismatch);
  }
}

}  // namespace
}  // namespace xks::sigv4
