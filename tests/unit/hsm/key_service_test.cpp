// AES-256-GCM through the real SoftHSM: round trips at every size the spec allows, every
// tamper, key-usage errors, duplicate labels, IV uniqueness, and an independent check against
// OpenSSL with a key whose value the test knows.
#include "xks/hsm/key_service.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <set>

#include "hsm_fixture.h"
#include "xks/hsm/key_admin.h"
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

  HsmResult<Sealed> encrypt(std::string_view key, ByteView plaintext, ByteView aad) {
    return service_->encrypt(key, plaintext, aad, {}, in(2s));
  }
  HsmResult<Bytes> decrypt(std::string_view key, const Sealed& sealed, ByteView aad) {
    return service_->decrypt(key, sealed.gcm.ciphertext, sealed.gcm.iv, sealed.gcm.tag, aad,
                             sealed.ciphertext_metadata, {}, in(2s));
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
      Bytes plaintext = random_bytes(plaintext_size);
      Bytes aad = random_bytes(aad_size);
      auto sealed = encrypt("foo", plaintext, aad);
      ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
      EXPECT_EQ(sealed->gcm.ciphertext.size(), plaintext_size);
      EXPECT_EQ(sealed->gcm.iv.size(), kGcmIvBytes);
      EXPECT_EQ(sealed->gcm.tag.size(), kGcmTagBytes);
      EXPECT_EQ(sealed->ciphertext_metadata, version_metadata(1));
      if (plaintext_size >= 16) {
        EXPECT_NE(sealed->gcm.ciphertext, plaintext);
      }
      auto opened = decrypt("foo", *sealed, aad);
      ASSERT_TRUE(opened.has_value()) << opened.error().message;
      EXPECT_EQ(*opened, plaintext) << plaintext_size << " " << aad_size;
    }
  }
}

TEST_F(KeyServiceTest, EveryTamperIsAnInvalidCiphertext) {
  Bytes plaintext = random_bytes(64);
  Bytes aad = random_bytes(32);
  auto sealed = encrypt("foo", plaintext, aad);
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;

  auto expect_invalid = [&](const Sealed& tampered, const Bytes& tampered_aad, const char* what) {
    auto opened = decrypt("foo", tampered, tampered_aad);
    ASSERT_FALSE(opened.has_value()) << what;
    EXPECT_EQ(opened.error().kind, HsmErrorKind::kInvalidCiphertext)
        << what << ": " << opened.error().message;
  };
  Sealed tampered = *sealed;
  tampered.gcm.ciphertext[10] ^= 1;
  expect_invalid(tampered, aad, "ciphertext");
  tampered = *sealed;
  tampered.gcm.tag[0] ^= 0x80;
  expect_invalid(tampered, aad, "tag");
  tampered = *sealed;
  tampered.gcm.iv[11] ^= 1;
  expect_invalid(tampered, aad, "iv");
  tampered = *sealed;
  tampered.gcm.ciphertext.pop_back();
  expect_invalid(tampered, aad, "truncated ciphertext");
  Bytes other_aad = aad;
  other_aad[0] ^= 1;
  expect_invalid(*sealed, other_aad, "aad");
  // Every bit of the metadata: another format, another version, or the same version with
  // different authenticated data.
  for (std::size_t bit = 0; bit < sealed->ciphertext_metadata.size() * 8; ++bit) {
    tampered = *sealed;
    tampered.ciphertext_metadata[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    expect_invalid(tampered, aad, "metadata bit");
  }
  tampered = *sealed;
  tampered.ciphertext_metadata.clear();
  expect_invalid(tampered, aad, "metadata removed");
  tampered = *sealed;
  tampered.ciphertext_metadata.push_back(0);
  expect_invalid(tampered, aad, "metadata lengthened");
  tampered = *sealed;
  tampered.gcm.iv.resize(16, 0);
  expect_invalid(tampered, aad, "iv of another length");
  tampered = *sealed;
  tampered.gcm.tag.pop_back();
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

  auto metadata = service_->metadata("decrypt_only_key", {}, in(2s));
  ASSERT_TRUE(metadata.has_value());
  EXPECT_TRUE(metadata->active.is_aes_256());
  EXPECT_FALSE(metadata->disabled);
  EXPECT_EQ(metadata->active.key_usage(), std::vector<std::string_view>{"DECRYPT"});
  EXPECT_EQ(service_->metadata("foo", {}, in(2s))->active.key_usage(),
            (std::vector<std::string_view>{"ENCRYPT", "DECRYPT"}));
  EXPECT_TRUE(service_->metadata("impotent_key", {}, in(2s))->active.key_usage().empty());
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
  KeyUse unprotected;
  unprotected.allow_unprotected = true;
  auto twin = service_->metadata("twin", unprotected, in(2s));
  ASSERT_FALSE(twin.has_value());
  EXPECT_EQ(twin.error().kind, HsmErrorKind::kDuplicateKey);
  EXPECT_NE(twin.error().message.find("two secret keys share the label and version 1"),
            std::string::npos);
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
    ASSERT_NE(sealed->gcm.iv, Bytes(kGcmIvBytes, 0));
    ASSERT_TRUE(ivs.emplace(sealed->gcm.iv.begin(), sealed->gcm.iv.end()).second)
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
  import_key("known", key);  // imported in the clear: served only where allowed
  KeyUse unprotected;
  unprotected.allow_unprotected = true;
  Bytes plaintext = random_bytes(100);
  Bytes aad_value = random_bytes(40);
  // The spec's AAD layout with the proxy's metadata for version 1, built by hand here.
  Bytes aad = {0, 40};
  aad.insert(aad.end(), aad_value.begin(), aad_value.end());
  aad.insert(aad.end(), {3, 0x01, 0x00, 0x01});

  auto sealed = service_->encrypt("known", plaintext, aad_value, unprotected, in(2s));
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  Bytes tag = sealed->gcm.tag;
  EXPECT_EQ(openssl_gcm(false, key, sealed->gcm.iv, aad, sealed->gcm.ciphertext, tag), plaintext);

  for (std::size_t iv_size : {12u, 16u}) {
    Bytes iv = random_bytes(iv_size);
    Bytes openssl_tag;
    Bytes ciphertext = openssl_gcm(true, key, iv, aad, plaintext, openssl_tag);
    auto opened = service_->decrypt("known", ciphertext, iv, openssl_tag, aad_value,
                                    sealed->ciphertext_metadata, unprotected, in(2s));
    ASSERT_TRUE(opened.has_value()) << iv_size << ": " << opened.error().message;
    EXPECT_EQ(*opened, plaintext);
  }
  // Without the allowance the same key is refused, for every operation.
  EXPECT_EQ(service_->metadata("known", {}, in(2s)).error().kind, HsmErrorKind::kUnprotectedKey);
  EXPECT_EQ(encrypt("known", plaintext, aad_value).error().kind, HsmErrorKind::kUnprotectedKey);
  EXPECT_EQ(decrypt("known", *sealed, aad_value).error().kind, HsmErrorKind::kUnprotectedKey);
}

TEST_F(KeyServiceTest, EachVersionDecryptsWhatItEncryptedAndEncryptUsesTheNewestActive) {
  Bytes plaintext = random_bytes(32);
  auto first = encrypt("foo", plaintext, {});
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->version, 1u);
  ASSERT_TRUE(rotate_key(*module_, slot_, token_.user_pin(), "foo", 2).has_value());
  // Cached until the directory is read again.
  EXPECT_EQ(encrypt("foo", plaintext, {})->version, 1u);
  std::vector<std::string> changes;
  ASSERT_TRUE(service_->refresh_keys([&](const std::string& c) { changes.push_back(c); }, in(2s)));
  EXPECT_EQ(changes, std::vector<std::string>{"key foo version 2 appeared (active)"});
  auto second = encrypt("foo", plaintext, {});
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->version, 2u);
  EXPECT_EQ(second->ciphertext_metadata, version_metadata(2));
  EXPECT_EQ(*decrypt("foo", *first, {}), plaintext);
  EXPECT_EQ(*decrypt("foo", *second, {}), plaintext);
  // Version 1 cannot open version 2's ciphertext, nor the reverse.
  Sealed swapped = *second;
  swapped.ciphertext_metadata = version_metadata(1);
  EXPECT_EQ(decrypt("foo", swapped, {}).error().kind, HsmErrorKind::kInvalidCiphertext);
  swapped.ciphertext_metadata = version_metadata(3);
  EXPECT_EQ(decrypt("foo", swapped, {}).error().kind, HsmErrorKind::kInvalidCiphertext);
  // Retired: decrypts only; Encrypt goes back to version 1.
  ASSERT_TRUE(set_version_encrypt(*module_, slot_, token_.user_pin(), "foo", 2, false));
  changes.clear();
  ASSERT_TRUE(service_->refresh_keys([&](const std::string& c) { changes.push_back(c); }, in(2s)));
  EXPECT_EQ(changes, std::vector<std::string>{"key foo version 2 is now decrypt-only"});
  EXPECT_EQ(encrypt("foo", plaintext, {})->version, 1u);
  EXPECT_EQ(*decrypt("foo", *second, {}), plaintext);
  // A ciphertext without metadata (made before versioning) uses version 1.
  HsmResult<GcmCiphertext> legacy;
  {
    auto lease = pool_->acquire(in(2s));
    ASSERT_TRUE(lease.has_value());
    auto handles = find_secret_keys(pool_->api(), lease->handle(), "foo");
    auto v1 = std::find_if(handles->begin(), handles->end(), [&](CK_OBJECT_HANDLE h) {
      return read_key_info(pool_->api(), lease->handle(), h)->version == 1;
    });
    legacy = gcm_encrypt(pool_->api(), lease->handle(), *v1, *vendor_profile("softhsm"), plaintext,
                         *xks_aad({}, {}));
  }
  ASSERT_TRUE(legacy.has_value());
  EXPECT_EQ(*decrypt("foo", Sealed{*legacy, {}, 1}, {}), plaintext);
}

TEST_F(KeyServiceTest, ADecryptNamingAVersionTheCacheLacksReadsTheKeyAgain) {
  // Two services on one token stand for two HSMs of a fleet: the first rotates and encrypts
  // with the new version before the second has refreshed its cache.
  KeyService other(*pool_, *vendor_profile("softhsm"));
  Bytes plaintext = random_bytes(32);
  ASSERT_TRUE(other.encrypt("foo", plaintext, {}, {}, in(2s)).has_value());  // cached: v1
  ASSERT_TRUE(rotate_key(*module_, slot_, token_.user_pin(), "foo", 2).has_value());
  auto sealed = encrypt("foo", plaintext, {});  // this one reads the key first: v2
  ASSERT_TRUE(sealed.has_value());
  ASSERT_EQ(sealed->version, 2u);
  auto opened = other.decrypt("foo", sealed->gcm.ciphertext, sealed->gcm.iv, sealed->gcm.tag, {},
                              sealed->ciphertext_metadata, {}, in(2s));
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, plaintext);
}

// What AWS's sample XKS proxy gives the HSM as AAD, built by hand (its documented scheme).
Bytes sample_aad(const Bytes& aad, const Bytes& metadata) {
  Bytes out = {static_cast<std::uint8_t>(aad.size() >> 8),
               static_cast<std::uint8_t>(aad.size() & 0xff)};
  if (!aad.empty()) {
    std::uint8_t digest[32];
    unsigned length = 0;
    EVP_Digest(aad.data(), aad.size(), digest, &length, EVP_sha256(), nullptr);
    out.insert(out.end(), digest, digest + length);
  }
  out.push_back(static_cast<std::uint8_t>(metadata.size()));
  out.insert(out.end(), metadata.begin(), metadata.end());
  return out;
}

TEST_F(KeyServiceTest, AKeyStoreMigratingFromTheSampleProxyOpensItsCiphertexts) {
  Bytes key = random_bytes(32);
  import_key("migrated", key);
  Bytes plaintext = random_bytes(48), aad = random_bytes(20);
  Bytes iv = random_bytes(12), tag;
  for (const Bytes& configured : {Bytes{'s', 'a', 'm', 'p', 'l', 'e'}, Bytes{}}) {
    SCOPED_TRACE(configured.size());
    Bytes ciphertext = openssl_gcm(true, key, iv, sample_aad(aad, configured), plaintext, tag);
    KeyUse plain;
    plain.allow_unprotected = true;
    KeyUse migrating = plain;
    migrating.aws_sample_metadata = std::make_shared<const Bytes>(configured);
    auto opened =
        service_->decrypt("migrated", ciphertext, iv, tag, aad, configured, migrating, in(2s));
    ASSERT_TRUE(opened.has_value()) << opened.error().message;
    EXPECT_EQ(*opened, plaintext);
    // Without the option it does not authenticate; with a changed AAD neither.
    EXPECT_EQ(service_->decrypt("migrated", ciphertext, iv, tag, aad, configured, plain, in(2s))
                  .error()
                  .kind,
              HsmErrorKind::kInvalidCiphertext);
    Bytes other = aad;
    other[0] ^= 1;
    EXPECT_EQ(
        service_->decrypt("migrated", ciphertext, iv, tag, other, configured, migrating, in(2s))
            .error()
            .kind,
        HsmErrorKind::kInvalidCiphertext);
    // This proxy's own ciphertexts still open with the option on, old and new.
    auto sealed = service_->encrypt("migrated", plaintext, aad, migrating, in(2s));
    ASSERT_TRUE(sealed.has_value());
    EXPECT_EQ(
        *service_->decrypt("migrated", sealed->gcm.ciphertext, sealed->gcm.iv, sealed->gcm.tag, aad,
                           sealed->ciphertext_metadata, migrating, in(2s)),
        plaintext);
    Bytes old_tag;
    Bytes old = openssl_gcm(true, key, iv, *xks_aad(aad, {}), plaintext, old_tag);
    EXPECT_EQ(*service_->decrypt("migrated", old, iv, old_tag, aad, {}, migrating, in(2s)),
              plaintext);
  }
}

TEST_F(KeyServiceTest, ADisabledKeyIsReportedAndRefusesToWork) {
  Bytes plaintext = random_bytes(32);
  auto sealed = encrypt("foo", plaintext, {});
  ASSERT_TRUE(sealed.has_value());
  ASSERT_TRUE(set_key_disabled(*module_, slot_, token_.user_pin(), "foo", true));
  std::vector<std::string> changes;
  ASSERT_TRUE(service_->refresh_keys([&](const std::string& c) { changes.push_back(c); }, in(2s)));
  EXPECT_EQ(changes, std::vector<std::string>{"key foo disabled"});
  auto metadata = service_->metadata("foo", {}, in(2s));
  ASSERT_TRUE(metadata.has_value());
  EXPECT_TRUE(metadata->disabled);
  EXPECT_EQ(encrypt("foo", plaintext, {}).error().kind, HsmErrorKind::kKeyDisabled);
  EXPECT_EQ(decrypt("foo", *sealed, {}).error().kind, HsmErrorKind::kKeyDisabled);
  ASSERT_TRUE(set_key_disabled(*module_, slot_, token_.user_pin(), "foo", false));
  ASSERT_TRUE(service_->refresh_keys([](const std::string&) {}, in(2s)));
  EXPECT_EQ(*decrypt("foo", *sealed, {}), plaintext);
}

TEST_F(KeyServiceTest, EncryptionsAreCountedAndAddedToTheCountObjectByEveryProcess) {
  import_key("foreign", random_bytes(32));  // another tool's key (no tag; not protected)
  auto count_of = [](const KeyService& service, std::string_view label) {
    for (const auto& count : service.encryption_counts()) {
      if (count.label == label)
        return count;
    }
    return KeyDirectory::VersionCount{};
  };
  auto recorded = [&](std::string_view label, std::uint32_t version = 1) -> std::uint64_t {
    auto listing = list_keys(*module_, slot_, token_.user_pin());
    for (const KeyListing& entry : *listing) {
      for (const KeyInfo& info : entry.versions) {
        if (entry.label == label && info.version == version)
          return info.encryptions;
      }
    }
    ADD_FAILURE() << "no " << label << " version " << version;
    return 0;
  };
  auto id_of = [&](std::string_view label) {
    auto session = open_logged_in_session(module_->api(), slot_, 0, token_.user_pin());
    auto handles = find_secret_keys(module_->api(), *session, label);
    auto info = read_key_info(module_->api(), *session, handles->front());
    module_->api().C_CloseSession(*session);
    return key_tag(*info) + "|" + info->was;
  };
  auto refresh = [](KeyService& service) {
    return service.refresh_keys([](const std::string&) {}, in(2s)).has_value();
  };
  const std::string foo_id = id_of("foo"), foreign_id = id_of("foreign");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(encrypt("foo", random_bytes(16), {}).has_value());
    ASSERT_TRUE(service_
                    ->encrypt("foreign", random_bytes(16), {},
                              {.allow_unprotected = true, .aws_sample_metadata = {}}, in(2s))
                    .has_value());
  }
  ASSERT_TRUE(decrypt("foo", *encrypt("foo", random_bytes(16), {}), {}).has_value());
  EXPECT_EQ(count_of(*service_, "foo").made, 6u);  // decryptions do not count
  EXPECT_EQ(count_of(*service_, "foo").lifetime, 6u);
  // Not due yet (a minute, or 2^20 encryptions): the token is not written on every refresh.
  ASSERT_TRUE(service_->record_encryptions(false).has_value());
  EXPECT_EQ(recorded("foo"), 0u);
  ASSERT_TRUE(service_->record_encryptions(true).has_value());
  EXPECT_EQ(recorded("foo"), 6u);
  EXPECT_EQ(recorded("foreign"), 5u);
  // The keys themselves are not written: their ids are as they were.
  EXPECT_EQ(id_of("foo"), foo_id);
  EXPECT_EQ(id_of("foreign"), foreign_id);

  // A second proxy on the token adds its own; each reads the other's after a refresh.
  KeyService other(*pool_, *vendor_profile("softhsm"));
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(other.encrypt("foo", random_bytes(16), {}, {}, in(2s)).has_value());
  ASSERT_TRUE(encrypt("foo", random_bytes(16), {}).has_value());
  {
    auto r = other.record_encryptions(true);
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }
  EXPECT_EQ(recorded("foo"), 9u);
  ASSERT_TRUE(service_->record_encryptions(true).has_value());
  EXPECT_EQ(recorded("foo"), 10u);
  ASSERT_TRUE(refresh(*service_));
  ASSERT_TRUE(refresh(other));
  EXPECT_EQ(count_of(*service_, "foo").lifetime, 10u);
  EXPECT_EQ(count_of(other, "foo").lifetime, 10u);
  EXPECT_EQ(count_of(*service_, "foo").made, 7u);

  // Lifecycle commands keep the count; a new version has its own.
  ASSERT_TRUE(set_key_disabled(*module_, slot_, token_.user_pin(), "foo", true));
  ASSERT_TRUE(set_key_disabled(*module_, slot_, token_.user_pin(), "foo", false));
  EXPECT_EQ(recorded("foo"), 10u);
  ASSERT_TRUE(rotate_key(*module_, slot_, token_.user_pin(), "foo", 2));
  ASSERT_TRUE(refresh(*service_));
  ASSERT_TRUE(encrypt("foo", random_bytes(16), {}).has_value());
  ASSERT_TRUE(service_->record_encryptions(true).has_value());
  EXPECT_EQ(recorded("foo", 1), 10u);
  EXPECT_EQ(recorded("foo", 2), 1u);
}

TEST_F(KeyServiceTest, SelfTestPassesWithTheRightProfile) {
  EXPECT_TRUE(service_->self_test("foo", in(2s)).has_value());
  auto usage = service_->self_test("encrypt_only_key", in(2s));
  ASSERT_FALSE(usage.has_value());
  EXPECT_EQ(usage.error().kind, HsmErrorKind::kKeyUsage);
}

}  // namespace
}  // namespace xks::hsm
