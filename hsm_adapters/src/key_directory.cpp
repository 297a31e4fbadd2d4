// Key lookup by label and its cache.
#include "xks/hsm/key_directory.h"

#include <mutex>

namespace xks::hsm {

std::vector<std::string_view> KeyInfo::key_usage() const {
  std::vector<std::string_view> usage;
  if (encrypt)
    usage.push_back("ENCRYPT");
  if (decrypt)
    usage.push_back("DECRYPT");
  if (sign)
    usage.push_back("SIGN");
  if (verify)
    usage.push_back("VERIFY");
  if (wrap)
    usage.push_back("WRAP");
  if (unwrap)
    usage.push_back("UNWRAP");
  return usage;
}

HsmResult<std::vector<CK_OBJECT_HANDLE>> find_secret_keys(CK_FUNCTION_LIST& api,
                                                          CK_SESSION_HANDLE session,
                                                          std::optional<std::string_view> label) {
  CK_OBJECT_CLASS secret_key = CKO_SECRET_KEY;
  CK_ATTRIBUTE query[] = {
      {CKA_CLASS, &secret_key, sizeof secret_key},
      {CKA_LABEL, label ? const_cast<char*>(label->data()) : nullptr, label ? label->size() : 0},
  };
  if (CK_RV rv = api.C_FindObjectsInit(session, query, label ? 2 : 1); rv != CKR_OK) {
    return tl::unexpected(HsmError::from_rv("C_FindObjectsInit", rv));
  }
  std::vector<CK_OBJECT_HANDLE> found;
  CK_OBJECT_HANDLE batch[16];
  CK_RV rv = CKR_OK;
  while (true) {
    CK_ULONG count = 0;
    rv = api.C_FindObjects(session, batch, 16, &count);
    if (rv != CKR_OK || count == 0)
      break;
    found.insert(found.end(), batch, batch + count);
  }
  CK_RV final_rv = api.C_FindObjectsFinal(session);
  if (rv != CKR_OK)
    return tl::unexpected(HsmError::from_rv("C_FindObjects", rv));
  if (final_rv != CKR_OK)
    return tl::unexpected(HsmError::from_rv("C_FindObjectsFinal", final_rv));
  return found;
}

HsmResult<KeyInfo> read_key_info(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                 CK_OBJECT_HANDLE handle) {
  KeyInfo info;
  info.handle = handle;
  CK_BBOOL encrypt = CK_FALSE, decrypt = CK_FALSE, sign = CK_FALSE, verify = CK_FALSE,
           wrap = CK_FALSE, unwrap = CK_FALSE;
  CK_ATTRIBUTE attributes[] = {
      {CKA_KEY_TYPE, &info.key_type, sizeof info.key_type},
      {CKA_VALUE_LEN, &info.value_length, sizeof info.value_length},
      {CKA_ENCRYPT, &encrypt, sizeof encrypt},
      {CKA_DECRYPT, &decrypt, sizeof decrypt},
      {CKA_SIGN, &sign, sizeof sign},
      {CKA_VERIFY, &verify, sizeof verify},
      {CKA_WRAP, &wrap, sizeof wrap},
      {CKA_UNWRAP, &unwrap, sizeof unwrap},
  };
  // CKR_ATTRIBUTE_TYPE_INVALID leaves the missing attribute's length at -1; the others are
  // still filled in, and an absent usage means "not allowed".
  CK_RV rv = api.C_GetAttributeValue(session, handle, attributes, std::size(attributes));
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
    return tl::unexpected(HsmError::from_rv("C_GetAttributeValue", rv));
  }
  auto flag = [&](const CK_ATTRIBUTE& attribute, CK_BBOOL value) {
    return attribute.ulValueLen == sizeof(CK_BBOOL) && value == CK_TRUE;
  };
  info.encrypt = flag(attributes[2], encrypt);
  info.decrypt = flag(attributes[3], decrypt);
  info.sign = flag(attributes[4], sign);
  info.verify = flag(attributes[5], verify);
  info.wrap = flag(attributes[6], wrap);
  info.unwrap = flag(attributes[7], unwrap);
  if (attributes[1].ulValueLen != sizeof(CK_ULONG))
    info.value_length = 0;
  return info;
}

HsmResult<KeyInfo> KeyDirectory::find(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                      std::string_view label) {
  {
    std::shared_lock lock(mutex_);
    if (auto found = keys_.find(label); found != keys_.end())
      return found->second;
  }
  auto handles = find_secret_keys(api, session, label);
  if (!handles)
    return tl::unexpected(handles.error());
  if (handles->empty()) {
    return tl::unexpected(HsmError{HsmErrorKind::kKeyNotFound, CKR_OK, "no key with that label"});
  }
  if (handles->size() > 1) {
    return tl::unexpected(HsmError{
        HsmErrorKind::kDuplicateKey, CKR_OK,
        std::to_string(handles->size()) + " secret keys share the label: refusing to pick one"});
  }
  auto info = read_key_info(api, session, handles->front());
  if (!info)
    return tl::unexpected(info.error());
  std::unique_lock lock(mutex_);
  keys_.insert_or_assign(std::string(label), *info);
  return *info;
}

void KeyDirectory::forget(std::string_view label) {
  std::unique_lock lock(mutex_);
  if (auto found = keys_.find(label); found != keys_.end())
    keys_.erase(found);
}

HsmResult<std::string> read_label(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                  CK_OBJECT_HANDLE handle) {
  CK_ATTRIBUTE attribute{CKA_LABEL, nullptr, 0};
  if (CK_RV rv = api.C_GetAttributeValue(session, handle, &attribute, 1); rv != CKR_OK) {
    return tl::unexpected(HsmError::from_rv("C_GetAttributeValue", rv));
  }
  std::string label(attribute.ulValueLen, '\0');
  attribute.pValue = label.data();
  if (CK_RV rv = api.C_GetAttributeValue(session, handle, &attribute, 1); rv != CKR_OK) {
    return tl::unexpected(HsmError::from_rv("C_GetAttributeValue", rv));
  }
  return label;
}

}  // namespace xks::hsm
