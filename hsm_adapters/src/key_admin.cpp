// Creating and listing AES keys.
#include "xks/hsm/key_admin.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <vector>

#include "xks/hsm/session.h"

namespace xks::hsm {

namespace {

// Closes the session when the admin command is done with it.
class AdminSession {
 public:
  AdminSession(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE handle) : api_(api), handle_(handle) {}
  ~AdminSession() { api_.C_CloseSession(handle_); }
  AdminSession(const AdminSession&) = delete;
  AdminSession& operator=(const AdminSession&) = delete;
  CK_SESSION_HANDLE handle() const { return handle_; }

 private:
  CK_FUNCTION_LIST& api_;
  CK_SESSION_HANDLE handle_;
};

}  // namespace

std::optional<KeyUsageRequest> parse_key_usage(std::string_view text) {
  if (text == "encrypt,decrypt" || text == "decrypt,encrypt")
    return KeyUsageRequest{true, true};
  if (text == "encrypt")
    return KeyUsageRequest{true, false};
  if (text == "decrypt")
    return KeyUsageRequest{false, true};
  if (text == "none")
    return KeyUsageRequest{false, false};
  return std::nullopt;
}

namespace {

// Today as YYYY-MM-DD (UTC).
std::string today() {
  auto day = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  std::chrono::year_month_day date(day);
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return text;
}

// Makes version `version` of `label` in an open read-write session.
HsmResult<KeyInfo> make_key(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                            std::string_view label, std::uint32_t version, KeyUsageRequest usage,
                            std::optional<std::span<const std::uint8_t, 32>> material) {
  CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_ULONG length = 32;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_BBOOL encrypt = usage.encrypt ? CK_TRUE : CK_FALSE;
  CK_BBOOL decrypt = usage.decrypt ? CK_TRUE : CK_FALSE;
  KeyInfo tagged;
  tagged.version = version;
  tagged.created = today();
  // No earlier id: 8 bytes from the HSM's RNG make the tag unique on the token (see
  // key_directory.h).
  std::array<CK_BYTE, 8> random{};
  if (CK_RV rv = api.C_GenerateRandom(session, random.data(), random.size()); rv != CKR_OK)
    return tl::unexpected(HsmError::from_rv("C_GenerateRandom", rv));
  tagged.was = hex({reinterpret_cast<const char*>(random.data()), random.size()});
  std::string id = key_tag(tagged);
  std::vector<CK_ATTRIBUTE> attributes = {
      {CKA_ID, id.data(), id.size()},
      {CKA_CLASS, &key_class, sizeof key_class},
      {CKA_KEY_TYPE, &key_type, sizeof key_type},
      material
          ? CK_ATTRIBUTE{CKA_VALUE, const_cast<std::uint8_t*>(material->data()), material->size()}
          : CK_ATTRIBUTE{CKA_VALUE_LEN, &length, sizeof length},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
      {CKA_TOKEN, &yes, sizeof yes},
      {CKA_PRIVATE, &yes, sizeof yes},
      {CKA_SENSITIVE, &yes, sizeof yes},
      {CKA_EXTRACTABLE, &no, sizeof no},
      {CKA_ENCRYPT, &encrypt, sizeof encrypt},
      {CKA_DECRYPT, &decrypt, sizeof decrypt},
      {CKA_SIGN, &no, sizeof no},
      {CKA_VERIFY, &no, sizeof no},
      {CKA_WRAP, &no, sizeof no},
      {CKA_UNWRAP, &no, sizeof no},
      {CKA_DERIVE, &no, sizeof no},
  };
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  const auto count = static_cast<CK_ULONG>(attributes.size());
  if (material) {
    if (CK_RV rv = api.C_CreateObject(session, attributes.data(), count, &handle); rv != CKR_OK)
      return tl::unexpected(HsmError::from_rv("C_CreateObject", rv));
  } else {
    CK_MECHANISM mechanism{CKM_AES_KEY_GEN, nullptr, 0};
    if (CK_RV rv = api.C_GenerateKey(session, &mechanism, attributes.data(), count, &handle);
        rv != CKR_OK) {
      return tl::unexpected(HsmError::from_rv("C_GenerateKey", rv));
    }
  }
  return read_key_info(api, session, handle);
}

// Opens a logged-in session (`flags`: 0 or CKF_RW_SESSION) and returns `use(api, session)`;
// the session is closed after.
template <typename Use>
auto with_session(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin, CK_FLAGS flags,
                  Use use) -> decltype(use(module.api(), CK_SESSION_HANDLE{})) {
  CK_FUNCTION_LIST& api = module.api();
  auto opened = open_logged_in_session(api, slot, flags, pin);
  if (!opened)
    return tl::unexpected(opened.error());
  AdminSession session(api, *opened);
  return use(api, session.handle());
}

// Opens a session, reads the versions of `label` and returns `use(api, session, versions)`.
template <typename Use>
auto with_versions(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                   CK_FLAGS flags, std::string_view label, Use use)
    -> decltype(use(module.api(), CK_SESSION_HANDLE{}, KeyVersions{})) {
  using Result = decltype(use(module.api(), CK_SESSION_HANDLE{}, KeyVersions{}));
  return with_session(module, slot, pin, flags,
                      [&](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session) -> Result {
                        auto key = read_key_versions(api, session, label);
                        if (!key)
                          return tl::unexpected(key.error());
                        return use(api, session, *key);
                      });
}

// Changes every version of `label` that `change` returns an attribute for (the attribute's
// value must stay valid until the next call); kKeyNotFound when it changes none.
template <typename Change>
HsmResult<void> set_on_versions(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                                std::string_view label, Change change) {
  return with_versions(
      module, slot, pin, CKF_RW_SESSION, label,
      [&](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
          const KeyVersions& key) -> HsmResult<void> {
        bool any = false;
        for (const KeyInfo& version : key.versions) {
          std::optional<CK_ATTRIBUTE> attribute = change(version);
          if (!attribute)
            continue;
          any = true;
          if (CK_RV rv = api.C_SetAttributeValue(session, version.handle, &*attribute, 1);
              rv != CKR_OK) {
            return tl::unexpected(HsmError::from_rv("C_SetAttributeValue", rv));
          }
        }
        if (!any)
          return tl::unexpected(HsmError{HsmErrorKind::kKeyNotFound, CKR_OK, "no such version"});
        return {};
      });
}

}  // namespace

HsmResult<KeyInfo> create_aes_key(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                                  std::string_view label, KeyUsageRequest usage,
                                  std::optional<std::span<const std::uint8_t, 32>> material) {
  return with_session(
      module, slot, pin, CKF_RW_SESSION,
      [&](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session) -> HsmResult<KeyInfo> {
        auto existing = find_secret_keys(api, session, label);
        if (!existing)
          return tl::unexpected(existing.error());
        if (!existing->empty()) {
          return tl::unexpected(HsmError{HsmErrorKind::kDuplicateKey, CKR_OK,
                                         "a secret key with that label exists already"});
        }
        return make_key(api, session, label, 1, usage, material);
      });
}

HsmResult<KeyInfo> rotate_key(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                              std::string_view label, std::uint32_t version,
                              std::optional<std::span<const std::uint8_t, 32>> material) {
  return with_versions(
      module, slot, pin, CKF_RW_SESSION, label,
      [&](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
          const KeyVersions& key) -> HsmResult<KeyInfo> {
        if (version > kMaxKeyVersion) {
          return tl::unexpected(
              HsmError{HsmErrorKind::kOther, CKR_OK, "the key has reached its last version"});
        }
        if (version <= key.versions.back().version) {
          return tl::unexpected(HsmError{HsmErrorKind::kDuplicateKey, CKR_OK,
                                         "the key has version " +
                                             std::to_string(key.versions.back().version) +
                                             " already: not above it"});
        }
        // A new version is there to encrypt; it decrypts when the key's version 1 does.
        const KeyInfo* first = key.find(1);
        KeyUsageRequest usage{true, first == nullptr || first->decrypt};
        return make_key(api, session, label, version, usage, material);
      });
}

HsmResult<std::uint32_t> newest_version(const Pkcs11Module& module, CK_SLOT_ID slot,
                                        std::string_view pin, std::string_view label) {
  return with_versions(
      module, slot, pin, 0, label,
      [](CK_FUNCTION_LIST&, CK_SESSION_HANDLE, const KeyVersions& key) -> HsmResult<std::uint32_t> {
        return key.versions.back().version;
      });
}

HsmResult<void> destroy_key_version(const Pkcs11Module& module, CK_SLOT_ID slot,
                                    std::string_view pin, std::string_view label,
                                    std::uint32_t version) {
  return with_versions(
      module, slot, pin, CKF_RW_SESSION, label,
      [&](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
          const KeyVersions& key) -> HsmResult<void> {
        const KeyInfo* found = key.find(version);
        if (found == nullptr)
          return tl::unexpected(HsmError{HsmErrorKind::kKeyNotFound, CKR_OK, "no such version"});
        if (CK_RV rv = api.C_DestroyObject(session, found->handle); rv != CKR_OK)
          return tl::unexpected(HsmError::from_rv("C_DestroyObject", rv));
        return {};
      });
}

HsmResult<void> set_version_encrypt(const Pkcs11Module& module, CK_SLOT_ID slot,
                                    std::string_view pin, std::string_view label,
                                    std::uint32_t version, bool encrypt) {
  CK_BBOOL value = encrypt ? CK_TRUE : CK_FALSE;
  return set_on_versions(module, slot, pin, label,
                         [&](const KeyInfo& info) -> std::optional<CK_ATTRIBUTE> {
                           if (info.version != version)
                             return std::nullopt;
                           return CK_ATTRIBUTE{CKA_ENCRYPT, &value, sizeof value};
                         });
}

HsmResult<void> set_key_disabled(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                                 std::string_view label, bool disabled) {
  std::string id;
  return set_on_versions(
      module, slot, pin, label, [&](const KeyInfo& info) -> std::optional<CK_ATTRIBUTE> {
        KeyInfo tagged = info;
        tagged.disabled = disabled;
        // A key another tool made gets its own CKA_ID back once enabled.
        id = !disabled && info.created.empty() ? unhex(info.was) : key_tag(tagged);
        return CK_ATTRIBUTE{CKA_ID, id.data(), id.size()};
      });
}

HsmResult<std::vector<KeyListing>> list_keys(const Pkcs11Module& module, CK_SLOT_ID slot,
                                             std::string_view pin) {
  return with_session(
      module, slot, pin, 0,
      [](CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session) -> HsmResult<std::vector<KeyListing>> {
        auto handles = find_secret_keys(api, session, std::nullopt);
        if (!handles)
          return tl::unexpected(handles.error());
        std::map<std::string, KeyListing> by_label;
        for (CK_OBJECT_HANDLE handle : *handles) {
          auto label = read_label(api, session, handle);
          if (!label)
            return tl::unexpected(label.error());
          auto info = read_key_info(api, session, handle);
          if (!info)
            return tl::unexpected(info.error());
          KeyListing& entry = by_label[*label];
          entry.label = *label;
          entry.versions.push_back(*info);
        }
        std::vector<KeyListing> listing;
        for (auto& [label, entry] : by_label) {
          std::sort(entry.versions.begin(), entry.versions.end(),
                    [](const KeyInfo& a, const KeyInfo& b) { return a.version < b.version; });
          for (std::size_t i = 1; i < entry.versions.size(); ++i)
            entry.ambiguous =
                entry.ambiguous || entry.versions[i].version == entry.versions[i - 1].version;
          for (KeyInfo& version : entry.versions) {
            auto count = read_encryption_count(api, session, label, version.version);
            if (!count)
              return tl::unexpected(count.error());
            version.encryptions = count->value;
          }
          listing.push_back(std::move(entry));
        }
        return listing;
      });
}

}  // namespace xks::hsm
