// AES-256-GCM through the real SoftHSM: round trips at every size the spec allows, every
// tamper, key-usage errors, duplicate labels, IV uniqueness, and an independent check against
// OpenSSL with a key whose value the test knows.
#include "xks/hsm/key_service.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <set>

#include "hsm_fixture.h"
#include "xks/hsm/session.h"

namespace xks::hsm {
namespace {

using namespace std::chrono_literals;

Bytes random_bytes(std::size_t size) {
  static std::mt19937 rng{std::random_device{}()};
  Bytes out(size);
  for (auto& byte : out)
    byte = static_cast<std::uint8_t>(rng());
  return out;
}

class KeyServiceTest : public test::HsmFixture {
 protected:
  void SetUp() override {
    HsmFixture::SetUp();
    ASSERT_NO_FATAL_FAILURE(create_key("foo"));
    ASSERT_NO_FATAL_FAILURE(create_key("encrypt_only_key", {true, false}));
    ASSERT_NO_FATAL_FAILURE(create_key("decrypt_only_key", {false, true}));
    ASSERT_NO_FATAL_FAILURE(create_key("impotent_key", {false, false}));
    ASSERT_NO_FATAL_FAILURE(open_pool({.sessions = 2}));
    service_ = std::make_unique<KeyService>(*pool_, *vendor_profile("softhsm"));
  }
  void TearDown() override {
    service_.reset();
    HsmFixture::TearDown();
  }

  HsmResult<GcmCiphertext> encrypt(std::string_view key, ByteView plaintext, ByteView aad) {
    return service_->encrypt(key, plaintext, aad, in(2s));
  }
  HsmResult<Bytes> decrypt(std::string_view key, const GcmCiphertext& sealed, ByteView aad) {
    return service_->decrypt(key, sealed.ciphertext, sealed.iv, sealed.tag, aad, in(2s));
  }

  // Imports an AES-256 key whose value the test knows (never done in production).
  void import_key(const std::string& label, const Bytes& value) {
    auto session = open_logged_in_session(module_->api(), slot_, CKF_RW_SESSION, token_.user_pin());
    ASSERT_TRUE(session.has_value()) << session.error().message;
    CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
    CK_KEY_TYPE key_type = CKK_AES;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE attributes[] = {
        {CKA_CLASS, &key_class, sizeof key_class},
        {CKA_KEY_TYPE, &key_type, sizeof key_type},
        {CKA_VALUE, const_cast<std::uint8_t*>(value.data()), value.size()},
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_ENCRYPT, &yes, sizeof yes},
        {CKA_DECRYPT, &yes, sizeof yes},
    };
    CK_OBJECT_HANDLE handle = 0;
    EXPECT_EQ(module_->api().C_CreateObject(*session, attributes, std::size(attributes), &handle),
              CKR_OK);
    module_->api().C_CloseSession(*session);
  }

  std::unique_ptr<KeyService> service_;
};

TEST_F(KeyServiceTest, RoundTripsEverySizeTheSpecAllows) {
  for (std::size_t plaintext_size : {0u, 1u, 15u, 16u, 17u, 1000u, 4300u, 6000u}) {
    for (std::size_t aad_size : {0u, 1u, 100u, 8192u}) {
      for (std::size_t metadata_size : {0u, 20u}) {
        Bytes plaintext = random_bytes(plaintext_size);
        Bytes aad = *xks_aad(random_bytes(aad_size), random_bytes(metadata_size));
        auto sealed = encrypt("foo", plaintext, aad);
        ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
        EXPECT_EQ(sealed->ciphertext.size(), plaintext_size);
        EXPECT_EQ(sealed->iv.size(), kGcmIvBytes);
        EXPECT_EQ(sealed->tag.size(), kGcmTagBytes);
        if (plaintext_size >= 16) {
          EXPECT_NE(sealed->ciphertext, plaintext);
        }
        auto opened = decrypt("foo", *sealed, aad);
        ASSERT_TRUE(opened.has_value()) << opened.error().message;
        EXPECT_EQ(*opened, plaintext) << plaintext_size << " " << aad_size;
      }
    }
  }
}

TEST_F(KeyServiceTest, EveryTamperIsAnInvalidCiphertext) {
  Bytes plaintext = random_bytes(64);
  Bytes aad_value = random_bytes(32);
  Bytes metadata = random_bytes(8);
  Bytes aad = *xks_aad(aad_value, metadata);
  auto sealed = encrypt("foo", plaintext, aad);
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;

  auto expect_invalid = [&](const GcmCiphertext& tampered, const Bytes& tampered_aad,
                            const char* what) {
    auto opened = decrypt("foo", tampered, tampered_aad);
    ASSERT_FALSE(opened.has_value()) << what;
    EXPECT_EQ(opened.error().kind, HsmErrorKind::kInvalidCiphertext)
        << what << ": " << opened.error().message;
  };
  GcmCiphertext tampered = *sealed;
  tampered.ciphertext[10] ^= 1;
  expect_invalid(tampered, aad, "ciphertext");
  tampered = *sealed;
  tampered.tag[0] ^= 0x80;
  expect_invalid(tampered, aad, "tag");
  tampered = *sealed;
  tampered.iv[11] ^= 1;
  expect_invalid(tampered, aad, "iv");
  tampered = *sealed;
  tampered.ciphertext.pop_back();
  expect_invalid(tampered, aad, "truncated ciphertext");
  Bytes other_aad = aad_value;
  other_aad[0] ^= 1;
  expect_invalid(*sealed, *xks_aad(other_aad, metadata), "aad");
  Bytes other_metadata = metadata;
  other_metadata.back() ^= 1;
  expect_invalid(*sealed, *xks_aad(aad_value, other_metadata), "metadata");
  expect_invalid(*sealed, *xks_aad(aad_value, {}), "metadata removed");
  tampered = *sealed;
  tampered.iv.resize(16, 0);
  expect_invalid(tampered, aad, "iv of another length");
  tampered = *sealed;
  tampered.tag.pop_back();
  expect_invalid(tampered, aad, "short tag");
}

TEST_F(KeyServiceTest, KeyUsageIsEnforced) {
  Bytes plaintext = random_bytes(32);
  auto sealed = encrypt("encrypt_only_key", plaintext, {});
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  auto opened = decrypt("encrypt_only_key", *sealed, {});
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().kind, HsmErrorKind::kKeyUsage);

  auto refused = encrypt("decrypt_only_key", plaintext, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, HsmErrorKind::kKeyUsage);
  auto none = encrypt("impotent_key", plaintext, {});
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().kind, HsmErrorKind::kKeyUsage);

  auto metadata = service_->metadata("decrypt_only_key", in(2s));
  ASSERT_TRUE(metadata.has_value());
  EXPECT_TRUE(metadata->is_aes_256());
  EXPECT_EQ(metadata->key_usage(), std::vector<std::string_view>{"DECRYPT"});
  EXPECT_EQ(service_->metadata("foo", in(2s))->key_usage(),
            (std::vector<std::string_view>{"ENCRYPT", "DECRYPT"}));
  EXPECT_TRUE(service_->metadata("impotent_key", in(2s))->key_usage().empty());
}

TEST_F(KeyServiceTest, TheHsmItselfRefusesAUsageItDoesNotAllow) {
  // Bypass the attribute check: the HSM's own CKR must map to a key-usage error too.
  auto lease = pool_->acquire(in(2s));
  ASSERT_TRUE(lease.has_value());
  auto handles = find_secret_keys(pool_->api(), lease->handle(), "decrypt_only_key");
  ASSERT_TRUE(handles.has_value());
  ASSERT_EQ(handles->size(), 1u);
  Bytes plaintext = random_bytes(16);
  auto refused = gcm_encrypt(pool_->api(), lease->handle(), handles->front(),
                             *vendor_profile("softhsm"), plaintext, {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, HsmErrorKind::kKeyUsage) << refused.error().message;
}

TEST_F(KeyServiceTest, UnknownAndDuplicateLabelsAreErrors) {
  auto missing = encrypt("no-such-key", random_bytes(8), {});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, HsmErrorKind::kKeyNotFound);

  import_key("twin", random_bytes(32));
  import_key("twin", random_bytes(32));
  auto twin = service_->metadata("twin", in(2s));
  ASSERT_FALSE(twin.has_value());
  EXPECT_EQ(twin.error().kind, HsmErrorKind::kDuplicateKey);
  EXPECT_NE(twin.error().message.find("2 secret keys share the label"), std::string::npos);
}

TEST_F(KeyServiceTest, AKeyReplacedUnderItsLabelIsLookedUpAgain) {
  ASSERT_TRUE(encrypt("foo", random_bytes(16), {}).has_value());  // handle now cached
  auto session = open_logged_in_session(module_->api(), slot_, CKF_RW_SESSION, token_.user_pin());
  ASSERT_TRUE(session.has_value());
  auto handles = find_secret_keys(module_->api(), *session, "foo");
  ASSERT_TRUE(handles.has_value());
  ASSERT_EQ(module_->api().C_DestroyObject(*session, handles->front()), CKR_OK);
  module_->api().C_CloseSession(*session);
  create_key("foo");
  // The cached handle is stale: the HSM says so, the directory looks the label up again.
  Bytes plaintext = random_bytes(16);
  auto sealed = encrypt("foo", plaintext, {});
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  auto opened = decrypt("foo", *sealed, {});
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, plaintext);
}

TEST_F(KeyServiceTest, TenThousandEncryptionsNeverRepeatAnIv) {
  std::set<std::string> ivs;
  Bytes plaintext = random_bytes(32);
  for (int i = 0; i < 10'000; ++i) {
    auto sealed = encrypt("foo", plaintext, {});
    ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
    ASSERT_NE(sealed->iv, Bytes(kGcmIvBytes, 0));
    ASSERT_TRUE(ivs.emplace(sealed->iv.begin(), sealed->iv.end()).second)
        << "IV repeated after " << i << " encryptions";
  }
}

// OpenSSL AES-256-GCM, as an independent implementation of what the HSM computes.
Bytes openssl_gcm(bool encrypt, const Bytes& key, const Bytes& iv, const Bytes& aad,
                  const Bytes& input, Bytes& tag) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  Bytes output(input.size());
  int length = 0;
  bool ok =
      EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv.size()), nullptr) == 1 &&
      EVP_CipherInit_ex(ctx, nullptr, nullptr, key.data(), iv.data(), encrypt) == 1 &&
      EVP_CipherUpdate(ctx, nullptr, &length, aad.data(), static_cast<int>(aad.size())) == 1 &&
      EVP_CipherUpdate(ctx, output.data(), &length, input.data(), static_cast<int>(input.size())) ==
          1;
  if (ok && !encrypt) {
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag.data()) == 1;
  }
  ok = ok && EVP_CipherFinal_ex(ctx, output.data() + length, &length) == 1;
  if (ok && encrypt) {
    tag.resize(16);
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag.data()) == 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  if (!ok)
    throw std::runtime_error("OpenSSL AES-GCM failed");
  return output;
}

TEST_F(KeyServiceTest, AgreesWithOpenSslIncludingSixteenByteIvs) {
  Bytes key = random_bytes(32);
  import_key("known", key);
  Bytes plaintext = random_bytes(100);
  Bytes aad_value = random_bytes(40);
  Bytes metadata = {'v', '1'};
  // The spec's AAD layout, built by hand here rather than by xks_aad().
  Bytes aad = {0, 40};
  aad.insert(aad.end(), aad_value.begin(), aad_value.end());
  aad.push_back(2);
  aad.insert(aad.end(), metadata.begin(), metadata.end());

  auto sealed = encrypt("known", plaintext, *xks_aad(aad_value, metadata));
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  Bytes tag = sealed->tag;
  EXPECT_EQ(openssl_gcm(false, key, sealed->iv, aad, sealed->ciphertext, tag), plaintext);

  for (std::size_t iv_size : {12u, 16u}) {
    Bytes iv = random_bytes(iv_size);
    Bytes openssl_tag;
    Bytes ciphertext = openssl_gcm(true, key, iv, aad, plaintext, openssl_tag);
    auto opened = decrypt("known", {ciphertext, iv, openssl_tag}, aad);
    ASSERT_TRUE(opened.has_value()) << iv_size << ": " << opened.error().message;
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST_F(KeyServiceTest, SelfTestPassesWithTheRightProfile) {
  EXPECT_TRUE(service_->self_test("foo", in(2s)).has_value());
  auto usage = service_->self_test("encrypt_only_key", in(2s));
  ASSERT_FALSE(usage.has_value());
  EXPECT_EQ(usage.error().kind, HsmErrorKind::kKeyUsage);
}

}  // namespace
}  // namespace xks::hsm
