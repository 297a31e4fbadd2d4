// Key administration on the real SoftHSM.
#include "xks/hsm/key_admin.h"

#include <gtest/gtest.h>

#include <array>

#include "hsm_fixture.h"
#include "xks/hsm/key_service.h"
#include "xks/hsm/session.h"
#include "xks/hsm/vendor_profile.h"

namespace xks::hsm {
namespace {

using KeyAdminTest = test::HsmFixture;

TEST_F(KeyAdminTest, CreatesKeysWithExactlyTheAskedUsages) {
  auto both = create_aes_key(*module_, slot_, token_.user_pin(), "both", {true, true});
  ASSERT_TRUE(both.has_value()) << both.error().message;
  EXPECT_TRUE(both->is_aes_256());
  EXPECT_EQ(both->key_usage(), (std::vector<std::string_view>{"ENCRYPT", "DECRYPT"}));
  auto encrypt_only = create_aes_key(*module_, slot_, token_.user_pin(), "enc", {true, false});
  ASSERT_TRUE(encrypt_only.has_value());
  EXPECT_EQ(encrypt_only->key_usage(), std::vector<std::string_view>{"ENCRYPT"});
  auto none = create_aes_key(*module_, slot_, token_.user_pin(), "none", {false, false});
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->key_usage().empty());
}

TEST_F(KeyAdminTest, ImportsTheSameKeyMaterialAsASensitiveNonExtractableKey) {
  std::array<std::uint8_t, 32> material{};
  for (std::size_t i = 0; i < material.size(); ++i)
    material[i] = static_cast<std::uint8_t>(i * 7 + 1);
  for (const char* label : {"copy-a", "copy-b"}) {
    auto made = create_aes_key(*module_, slot_, token_.user_pin(), label, {}, material);
    ASSERT_TRUE(made.has_value()) << made.error().message;
    EXPECT_TRUE(made->is_aes_256());
  }
  // What one copy seals, the other opens: the same key on two HSMs of a fleet.
  ASSERT_NO_FATAL_FAILURE(open_pool({.sessions = 1}));
  KeyService keys(*pool_, *vendor_profile("softhsm"));
  const Bytes plaintext{1, 2, 3, 4};
  auto sealed = keys.encrypt("copy-a", plaintext, {}, {}, in(std::chrono::seconds(5)));
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  auto opened = keys.decrypt("copy-b", sealed->gcm.ciphertext, sealed->gcm.iv, sealed->gcm.tag, {},
                             sealed->ciphertext_metadata, {}, in(std::chrono::seconds(5)));
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, plaintext);
  // And the material never comes back out.
  auto lease = pool_->acquire(in(std::chrono::seconds(5)));
  ASSERT_TRUE(lease.has_value());
  auto handles = find_secret_keys(pool_->api(), lease->handle(), "copy-a");
  ASSERT_TRUE(handles.has_value() && handles->size() == 1u);
  CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE;
  CK_ATTRIBUTE flags[] = {{CKA_SENSITIVE, &sensitive, sizeof sensitive},
                          {CKA_EXTRACTABLE, &extractable, sizeof extractable}};
  ASSERT_EQ(pool_->api().C_GetAttributeValue(lease->handle(), handles->front(), flags, 2), CKR_OK);
  EXPECT_EQ(sensitive, CK_TRUE);
  EXPECT_EQ(extractable, CK_FALSE);
  std::array<std::uint8_t, 32> read_back{};
  CK_ATTRIBUTE value{CKA_VALUE, read_back.data(), read_back.size()};
  EXPECT_EQ(pool_->api().C_GetAttributeValue(lease->handle(), handles->front(), &value, 1),
            CKR_ATTRIBUTE_SENSITIVE);
}

TEST_F(KeyAdminTest, RefusesALabelInUse) {
  ASSERT_TRUE(create_aes_key(*module_, slot_, token_.user_pin(), "foo", {}).has_value());
  auto again = create_aes_key(*module_, slot_, token_.user_pin(), "foo", {});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, HsmErrorKind::kDuplicateKey);
}

TEST_F(KeyAdminTest, RefusesAWrongPin) {
  auto refused = create_aes_key(*module_, slot_, "000000", "foo", {});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, HsmErrorKind::kLoginFailed);
}

TEST_F(KeyAdminTest, ListsKeysAndFlagsDuplicates) {
  ASSERT_TRUE(create_aes_key(*module_, slot_, token_.user_pin(), "b-key", {false, true}));
  ASSERT_TRUE(create_aes_key(*module_, slot_, token_.user_pin(), "a-key", {}));
  // A second object with the same label and version, made behind the tool's back.
  auto session = open_logged_in_session(module_->api(), slot_, CKF_RW_SESSION, token_.user_pin());
  ASSERT_TRUE(session.has_value());
  auto originals = find_secret_keys(module_->api(), *session, "a-key");
  ASSERT_TRUE(originals.has_value());
  CK_OBJECT_HANDLE copy = 0;
  CK_BBOOL on_token = CK_TRUE;
  CK_ATTRIBUTE keep_on_token{CKA_TOKEN, &on_token, sizeof on_token};
  ASSERT_EQ(module_->api().C_CopyObject(*session, originals->front(), &keep_on_token, 1, &copy),
            CKR_OK);
  module_->api().C_CloseSession(*session);

  auto listing = list_keys(*module_, slot_, token_.user_pin());
  ASSERT_TRUE(listing.has_value()) << listing.error().message;
  ASSERT_EQ(listing->size(), 2u);
  EXPECT_EQ((*listing)[0].label, "a-key");
  EXPECT_EQ((*listing)[0].versions.size(), 2u);
  EXPECT_TRUE((*listing)[0].ambiguous);
  EXPECT_EQ((*listing)[1].label, "b-key");
  EXPECT_FALSE((*listing)[1].ambiguous);
  ASSERT_EQ((*listing)[1].versions.size(), 1u);
  EXPECT_EQ((*listing)[1].versions[0].key_usage(), std::vector<std::string_view>{"DECRYPT"});
  EXPECT_TRUE((*listing)[1].versions[0].is_protected());
  EXPECT_TRUE((*listing)[1].versions[0].never_extractable);
  EXPECT_EQ((*listing)[1].versions[0].created.size(), 10u);  // YYYY-MM-DD
}

TEST_F(KeyAdminTest, RotationRetirementAndDisablingLiveOnTheToken) {
  ASSERT_TRUE(create_aes_key(*module_, slot_, token_.user_pin(), "k", {}));
  auto second = rotate_key(*module_, slot_, token_.user_pin(), "k", 2);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(second->version, 2u);
  EXPECT_TRUE(second->is_protected());
  EXPECT_TRUE(second->encrypt && second->decrypt);
  // Not at or below a version it has (a fleet names one version for every HSM).
  EXPECT_EQ(rotate_key(*module_, slot_, token_.user_pin(), "k", 2).error().kind,
            HsmErrorKind::kDuplicateKey);
  EXPECT_EQ(*newest_version(*module_, slot_, token_.user_pin(), "k"), 2u);
  auto third = rotate_key(*module_, slot_, token_.user_pin(), "k", 3);
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->version, 3u);
  ASSERT_TRUE(set_version_encrypt(*module_, slot_, token_.user_pin(), "k", 3, false));
  ASSERT_TRUE(set_key_disabled(*module_, slot_, token_.user_pin(), "k", true));

  auto listing = list_keys(*module_, slot_, token_.user_pin());
  ASSERT_TRUE(listing.has_value());
  const KeyListing& key = listing->front();
  ASSERT_EQ(key.versions.size(), 3u);
  EXPECT_EQ(key.versions[0].version, 1u);
  EXPECT_EQ(key.versions[2].version, 3u);
  EXPECT_FALSE(key.versions[2].encrypt);
  for (const KeyInfo& version : key.versions)
    EXPECT_TRUE(version.disabled);
  ASSERT_TRUE(set_key_disabled(*module_, slot_, token_.user_pin(), "k", false));
  listing = list_keys(*module_, slot_, token_.user_pin());
  for (const KeyInfo& version : listing->front().versions)
    EXPECT_FALSE(version.disabled);
  // No such version, no such key.
  EXPECT_EQ(set_version_encrypt(*module_, slot_, token_.user_pin(), "k", 9, false).error().kind,
            HsmErrorKind::kKeyNotFound);
  EXPECT_EQ(rotate_key(*module_, slot_, token_.user_pin(), "nope", 2).error().kind,
            HsmErrorKind::kKeyNotFound);
  // A rotation undone: the version is gone, the others stay.
  ASSERT_TRUE(destroy_key_version(*module_, slot_, token_.user_pin(), "k", 3));
  EXPECT_EQ(*newest_version(*module_, slot_, token_.user_pin(), "k"), 2u);
}

TEST_F(KeyAdminTest, OnlyAnExactTagIsTakenForOneAndAnyOtherIdIsKept) {
  auto read = [](std::string_view id) {
    KeyInfo key;
    read_key_tag(id, key);
    return key;
  };
  KeyInfo tagged = read("xks:v=7;created=2026-11-29;disabled;was=00ff");
  EXPECT_EQ(tagged.version, 7u);
  EXPECT_EQ(tagged.created, "2026-11-29");
  EXPECT_TRUE(tagged.disabled);
  EXPECT_EQ(tagged.was, "00ff");
  EXPECT_EQ(key_tag(tagged), "xks:v=7;created=2026-11-29;disabled;was=00ff");
  EXPECT_TRUE(tagged.tagged);

  // Versions beyond what ciphertextMetadata holds, malformed parts, unknown parts, another
  // tool's id that merely starts like a tag: version 1, enabled, the id kept to restore.
  for (std::string_view id : {"xks:v=65536",
                              "xks:v=0",
                              "xks:v=007",
                              "xks:v=9999999999",
                              "xks:created=2026-11-29",
                              "xks:v=2;created=\x1b[31m",
                              "xks:v=2;was=zz",
                              "xks:v=2;was=abc",
                              "xks:v=2;colour=red",
                              "xks:v=2;disabled;disabled",
                              "xks:v=2;u=0123456789abcdef",
                              "xks:foreign-object-7",
                              "xks:",
                              "plain",
                              "xks:v=2;enc=0",
                              "xks:v=2;enc=012",
                              "xks:v=2;enc=",
                              "xks:v=2;enc=1x",
                              "xks:v=2;enc=18446744073709551616",
                              "xks:v=2;enc=5;enc=6",
                              "xks:v=2;enc=-5"}) {
    KeyInfo foreign = read(id);
    EXPECT_FALSE(foreign.tagged) << id;
    EXPECT_EQ(foreign.version, 1u) << id;
    EXPECT_FALSE(foreign.disabled) << id;
    EXPECT_TRUE(foreign.created.empty()) << id;
    EXPECT_EQ(unhex(foreign.was), id) << id;
  }
  EXPECT_EQ(read("xks:v=65535").version, 65535u);
}

TEST_F(KeyAdminTest, DisablingAKeyAnotherToolMadeKeepsItsOwnIdForLater) {
  auto session = open_logged_in_session(module_->api(), slot_, CKF_RW_SESSION, token_.user_pin());
  ASSERT_TRUE(session.has_value());
  CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_ULONG length = 32;
  CK_BBOOL yes = CK_TRUE;
  std::string label = "foreign", id = "\x01\x02pkcs11-tool" + std::string(300, 'x');
  CK_ATTRIBUTE attributes[] = {
      {CKA_CLASS, &key_class, sizeof key_class},
      {CKA_KEY_TYPE, &key_type, sizeof key_type},
      {CKA_VALUE_LEN, &length, sizeof length},
      {CKA_LABEL, label.data(), label.size()},
      {CKA_ID, id.data(), id.size()},
      {CKA_TOKEN, &yes, sizeof yes},
      {CKA_SENSITIVE, &yes, sizeof yes},
      {CKA_ENCRYPT, &yes, sizeof yes},
  };
  CK_MECHANISM mechanism{CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE handle = 0;
  ASSERT_EQ(module_->api().C_GenerateKey(*session, &mechanism, attributes, std::size(attributes),
                                         &handle),
            CKR_OK);
  auto read_id = [&] {
    std::string value(1024, '\0');
    CK_ATTRIBUTE attribute{CKA_ID, value.data(), value.size()};
    EXPECT_EQ(module_->api().C_GetAttributeValue(*session, handle, &attribute, 1), CKR_OK);
    value.resize(attribute.ulValueLen);
    return value;
  };
  ASSERT_TRUE(set_key_disabled(*module_, slot_, token_.user_pin(), "foreign", true));
  EXPECT_EQ(read_id().substr(0, 47), "xks:v=1;disabled;was=0102706b637331312d746f6f6c");
  auto listing = list_keys(*module_, slot_, token_.user_pin());
  ASSERT_TRUE(listing.has_value());
  EXPECT_TRUE(listing->front().versions[0].disabled);
  EXPECT_EQ(listing->front().versions[0].version, 1u);
  ASSERT_TRUE(set_key_disabled(*module_, slot_, token_.user_pin(), "foreign", false));
  EXPECT_EQ(read_id(), id);
  module_->api().C_CloseSession(*session);
}

}  // namespace
}  // namespace xks::hsm
