// Creating and listing AES keys.
#include "xks/hsm/key_admin.h"

#include <map>

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

HsmResult<KeyInfo> create_aes_key(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                                  std::string_view label, KeyUsageRequest usage,
                                  std::optional<std::span<const std::uint8_t, 32>> material) {
  CK_FUNCTION_LIST& api = module.api();
  auto opened = open_logged_in_session(api, slot, CKF_RW_SESSION, pin);
  if (!opened)
    return tl::unexpected(opened.error());
  AdminSession session(api, *opened);

  auto existing = find_secret_keys(api, session.handle(), label);
  if (!existing)
    return tl::unexpected(existing.error());
  if (!existing->empty()) {
    return tl::unexpected(HsmError{HsmErrorKind::kDuplicateKey, CKR_OK,
                                   "a secret key with that label exists already"});
  }

  CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_ULONG length = 32;
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_BBOOL encrypt = usage.encrypt ? CK_TRUE : CK_FALSE;
  CK_BBOOL decrypt = usage.decrypt ? CK_TRUE : CK_FALSE;
  CK_ATTRIBUTE attributes[] = {
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
  if (material) {
    if (CK_RV rv = api.C_CreateObject(session.handle(), attributes, std::size(attributes), &handle);
        rv != CKR_OK) {
      return tl::unexpected(HsmError::from_rv("C_CreateObject", rv));
    }
  } else {
    CK_MECHANISM mechanism{CKM_AES_KEY_GEN, nullptr, 0};
    if (CK_RV rv = api.C_GenerateKey(session.handle(), &mechanism, attributes,
                                     std::size(attributes), &handle);
        rv != CKR_OK) {
      return tl::unexpected(HsmError::from_rv("C_GenerateKey", rv));
    }
  }
  return read_key_info(api, session.handle(), handle);
}

HsmResult<std::vector<KeyListing>> list_keys(const Pkcs11Module& module, CK_SLOT_ID slot,
                                             std::string_view pin) {
  CK_FUNCTION_LIST& api = module.api();
  auto opened = open_logged_in_session(api, slot, 0, pin);
  if (!opened)
    return tl::unexpected(opened.error());
  AdminSession session(api, *opened);

  auto handles = find_secret_keys(api, session.handle(), std::nullopt);
  if (!handles)
    return tl::unexpected(handles.error());

  std::map<std::string, KeyListing> by_label;
  for (CK_OBJECT_HANDLE handle : *handles) {
    auto label = read_label(api, session.handle(), handle);
    if (!label)
      return tl::unexpected(label.error());
    auto info = read_key_info(api, session.handle(), handle);
    if (!info)
      return tl::unexpected(info.error());
    auto [entry, inserted] = by_label.try_emplace(*label, KeyListing{*label, *info, 1});
    if (!inserted)
      ++entry->second.copies;
  }
  std::vector<KeyListing> listing;
  for (auto& [label, entry] : by_label)
    listing.push_back(std::move(entry));
  return listing;
}

}  // namespace xks::hsm
