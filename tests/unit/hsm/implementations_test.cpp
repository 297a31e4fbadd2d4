// The HSM layer on two independent PKCS#11 implementations, SoftHSMv2 and NSS softoken, with the
// same tests: keys made distinct, protected and with their usages; AES-GCM round trips with AAD
// at the spec's sizes; every tamper an invalid ciphertext whatever code the implementation
// gives for a bad tag (the vendor profile's); key usage and the lifecycle commands (rotate,
// disable, enable), which rewrite the keys' CKA_ID; a wrong PIN refused.
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "nss_token.h"
#include "softhsm_token.h"
#include "xks/hsm/key_admin.h"
#include "xks/hsm/key_service.h"
#include "xks/hsm/pkcs11_module.h"
#include "xks/hsm/session_pool.h"
#include "xks/hsm/vendor_profile.h"

namespace xks::hsm {
namespace {

struct SoftHsm {
  static constexpr const char* kProfile = "softhsm";
  test::SoftHsmToken token{"xks-implementations"};
  ModuleSpec module() const { return {test::kSoftHsmModule}; }
};

struct Nss {
  static constexpr const char* kProfile = "nss";
  test::NssToken token;
  ModuleSpec module() const { return token.module(); }
};

Bytes random_bytes(std::size_t size) {
  static std::mt19937 random{std::random_device{}()};
  Bytes out(size);
  for (auto& byte : out)
    byte = static_cast<std::uint8_t>(random());
  return out;
}

template <typename Implementation>
class Pkcs11ImplementationTest : public testing::Test {
 protected:
  void SetUp() override {
    auto loaded = Pkcs11Module::load(implementation_.module());
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    module_ = *loaded;
    auto token = module_->find_token({TokenSelector::By::kLabel, implementation_.token.label()});
    ASSERT_TRUE(token.has_value()) << token.error().message;
    slot_ = token->slot_id;
  }
  void TearDown() override {
    service_.reset();
    pool_.reset();
    module_.reset();  // C_Finalize: the next test's database may be another
  }

  const std::string& pin() const { return implementation_.token.user_pin(); }

  void create(const std::string& label, KeyUsageRequest usage = {}) {
    auto created = create_aes_key(*module_, slot_, pin(), label, usage);
    ASSERT_TRUE(created.has_value()) << created.error().message;
  }

  KeyService& service() {
    if (!service_) {
      auto pool = SessionPool::open(module_, slot_, pin(), {.sessions = 2});
      EXPECT_TRUE(pool.has_value()) << pool.error().message;
      pool_ = std::move(*pool);
      service_ = std::make_unique<KeyService>(*pool_, *vendor_profile(Implementation::kProfile));
    }
    return *service_;
  }

  static KeyService::Deadline soon() { return SessionPool::Clock::now() + std::chrono::seconds(5); }

  Implementation implementation_;
  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_ = 0;
  std::unique_ptr<SessionPool> pool_;
  std::unique_ptr<KeyService> service_;
};

using Implementations = testing::Types<SoftHsm, Nss>;
class ImplementationNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kProfile;
  }
};
TYPED_TEST_SUITE(Pkcs11ImplementationTest, Implementations, ImplementationNames);

TYPED_TEST(Pkcs11ImplementationTest, KeysAreDistinctProtectedAndHaveTheirUsages) {
  this->create("a");
  this->create("b", {.encrypt = true, .decrypt = false});
  this->create("c", {.encrypt = false, .decrypt = true});
  auto listed = list_keys(*this->module_, this->slot_, this->pin());
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  ASSERT_EQ(listed->size(), 3u);
  for (const KeyListing& key : *listed) {
    ASSERT_EQ(key.versions.size(), 1u) << key.label;
    const KeyInfo& info = key.versions.front();
    EXPECT_FALSE(key.ambiguous) << key.label;
    EXPECT_TRUE(info.is_aes_256()) << key.label;
    EXPECT_TRUE(info.sensitive && !info.extractable && info.always_sensitive &&
                info.never_extractable)
        << key.label;
    EXPECT_EQ(info.encrypt, key.label != "c") << key.label;
    EXPECT_EQ(info.decrypt, key.label != "b") << key.label;
  }
}

TYPED_TEST(Pkcs11ImplementationTest, RoundTripsWithAadAndEveryTamperIsAnInvalidCiphertext) {
  this->create("foo");
  KeyService& keys = this->service();
  for (std::size_t size : {0u, 1u, 16u, 4300u}) {
    Bytes plaintext = random_bytes(size), aad = random_bytes(size == 0 ? 0 : 8192);
    auto sealed = keys.encrypt("foo", plaintext, aad, {}, this->soon());
    ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
    auto opened = keys.decrypt("foo", sealed->gcm.ciphertext, sealed->gcm.iv, sealed->gcm.tag, aad,
                               sealed->ciphertext_metadata, {}, this->soon());
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    EXPECT_EQ(*opened, plaintext);
  }
  Bytes plaintext = random_bytes(64), aad = random_bytes(32);
  auto sealed = keys.encrypt("foo", plaintext, aad, {}, this->soon());
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  auto expect_invalid = [&](Bytes ciphertext, Bytes iv, Bytes tag, Bytes other_aad) {
    auto opened = keys.decrypt("foo", ciphertext, iv, tag, other_aad, sealed->ciphertext_metadata,
                               {}, this->soon());
    ASSERT_FALSE(opened.has_value());
    EXPECT_EQ(opened.error().kind, HsmErrorKind::kInvalidCiphertext) << opened.error().message;
  };
  const GcmCiphertext& gcm = sealed->gcm;
  Bytes flipped = gcm.tag;
  flipped[0] ^= 1;
  expect_invalid(gcm.ciphertext, gcm.iv, flipped, aad);
  flipped = gcm.ciphertext;
  flipped[10] ^= 1;
  expect_invalid(flipped, gcm.iv, gcm.tag, aad);
  flipped = gcm.iv;
  flipped[0] ^= 1;
  expect_invalid(gcm.ciphertext, flipped, gcm.tag, aad);
  expect_invalid(gcm.ciphertext, gcm.iv, gcm.tag, random_bytes(32));
}

TYPED_TEST(Pkcs11ImplementationTest, KeyUsageAndTheLifecycleCommandsHold) {
  this->create("decrypt-only", {.encrypt = false, .decrypt = true});
  this->create("foo");
  KeyService& keys = this->service();
  Bytes plaintext = random_bytes(32);
  auto refused = keys.encrypt("decrypt-only", plaintext, {}, {}, this->soon());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, HsmErrorKind::kKeyUsage);

  auto first = keys.encrypt("foo", plaintext, {}, {}, this->soon());
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto rotated = rotate_key(*this->module_, this->slot_, this->pin(), "foo", 2);
  ASSERT_TRUE(rotated.has_value()) << rotated.error().message;
  ASSERT_TRUE(set_key_disabled(*this->module_, this->slot_, this->pin(), "foo", true));
  ASSERT_TRUE(keys.refresh_keys([](const std::string&) {}, this->soon()));
  auto disabled = keys.encrypt("foo", plaintext, {}, {}, this->soon());
  ASSERT_FALSE(disabled.has_value());
  EXPECT_EQ(disabled.error().kind, HsmErrorKind::kKeyDisabled);
  ASSERT_TRUE(set_key_disabled(*this->module_, this->slot_, this->pin(), "foo", false));
  ASSERT_TRUE(keys.refresh_keys([](const std::string&) {}, this->soon()));
  auto second = keys.encrypt("foo", plaintext, {}, {}, this->soon());
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second->version, 2u);
  // The first version still opens what it sealed; the keys stayed two objects and distinct.
  auto opened = keys.decrypt("foo", first->gcm.ciphertext, first->gcm.iv, first->gcm.tag, {},
                             first->ciphertext_metadata, {}, this->soon());
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, plaintext);
  auto listed = list_keys(*this->module_, this->slot_, this->pin());
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->back().label, "foo");
  EXPECT_EQ(listed->back().versions.size(), 2u);
  EXPECT_FALSE(listed->back().ambiguous);
}

TYPED_TEST(Pkcs11ImplementationTest, AWrongPinIsRefused) {
  auto pool = SessionPool::open(this->module_, this->slot_, "not-the-pin", {.sessions = 1});
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().kind, HsmErrorKind::kLoginFailed) << pool.error().message;
}

}  // namespace
}  // namespace xks::hsm
