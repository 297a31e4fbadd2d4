// Key lookup by label and its cache.
#include "xks/hsm/key_directory.h"

#include <algorithm>
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

bool KeyVersions::disabled() const {
  return std::any_of(versions.begin(), versions.end(),
                     [](const KeyInfo& version) { return version.disabled; });
}

const KeyInfo& KeyVersions::active() const {
  for (auto version = versions.rbegin(); version != versions.rend(); ++version) {
    if (version->encrypt)
      return *version;
  }
  return versions.back();
}

const KeyInfo* KeyVersions::find(std::uint32_t number) const {
  for (const KeyInfo& version : versions) {
    if (version.version == number)
      return &version;
  }
  return nullptr;
}

namespace {

constexpr std::string_view kTagPrefix = "xks:";

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

}  // namespace

std::string key_tag(const KeyInfo& key) {
  std::string tag = std::string(kTagPrefix) + "v=" + std::to_string(key.version);
  if (!key.created.empty())
    tag += ";created=" + key.created;
  if (key.disabled)
    tag += ";disabled";
  if (!key.was.empty())
    tag += ";was=" + key.was;
  return tag;
}

void read_key_tag(std::string_view id, KeyInfo& key) {
  key.version = 1;
  key.created.clear();
  key.disabled = false;
  key.was.clear();
  if (!id.starts_with(kTagPrefix)) {
    if (!id.empty())
      key.was = hex(id);  // kept to restore when the proxy tags the key (then drops it again)
    return;
  }
  std::string_view rest = id.substr(kTagPrefix.size());
  while (!rest.empty()) {
    std::size_t end = rest.find(';');
    std::string_view item = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    auto digits = [](std::string_view text) {
      return !text.empty() && text.size() <= 9 &&
             std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (item.starts_with("v=") && digits(item.substr(2)))
      key.version = std::max<std::uint32_t>(
          1, static_cast<std::uint32_t>(std::stoul(std::string(item.substr(2)))));
    else if (item.starts_with("created="))
      key.created = item.substr(8);
    else if (item == "disabled")
      key.disabled = true;
    else if (item.starts_with("was="))
      key.was = item.substr(4);
  }
}

HsmResult<KeyInfo> read_key_info(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                 CK_OBJECT_HANDLE handle) {
  KeyInfo info;
  info.handle = handle;
  CK_BBOOL encrypt = CK_FALSE, decrypt = CK_FALSE, sign = CK_FALSE, verify = CK_FALSE,
           wrap = CK_FALSE, unwrap = CK_FALSE, sensitive = CK_FALSE, extractable = CK_TRUE,
           always_sensitive = CK_FALSE, never_extractable = CK_FALSE;
  char id[256] = {};
  CK_ATTRIBUTE attributes[] = {
      {CKA_KEY_TYPE, &info.key_type, sizeof info.key_type},
      {CKA_VALUE_LEN, &info.value_length, sizeof info.value_length},
      {CKA_ENCRYPT, &encrypt, sizeof encrypt},
      {CKA_DECRYPT, &decrypt, sizeof decrypt},
      {CKA_SIGN, &sign, sizeof sign},
      {CKA_VERIFY, &verify, sizeof verify},
      {CKA_WRAP, &wrap, sizeof wrap},
      {CKA_UNWRAP, &unwrap, sizeof unwrap},
      {CKA_SENSITIVE, &sensitive, sizeof sensitive},
      {CKA_EXTRACTABLE, &extractable, sizeof extractable},
      {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof always_sensitive},
      {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof never_extractable},
      {CKA_ID, id, sizeof id},  // too long (CKR_BUFFER_TOO_SMALL): not one of ours
  };
  // CKR_ATTRIBUTE_TYPE_INVALID leaves the missing attribute's length at -1; the others are
  // still filled in, and an absent usage means "not allowed".
  CK_RV rv = api.C_GetAttributeValue(session, handle, attributes, std::size(attributes));
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL &&
      rv != CKR_ATTRIBUTE_SENSITIVE) {
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
  info.sensitive = flag(attributes[8], sensitive);
  // Unknown extractability counts as extractable: only a key that says so is protected.
  info.extractable = attributes[9].ulValueLen != sizeof(CK_BBOOL) || extractable == CK_TRUE;
  info.always_sensitive = flag(attributes[10], always_sensitive);
  info.never_extractable = flag(attributes[11], never_extractable);
  if (attributes[12].ulValueLen <= sizeof id)
    read_key_tag({id, attributes[12].ulValueLen}, info);
  if (attributes[1].ulValueLen != sizeof(CK_ULONG))
    info.value_length = 0;
  return info;
}

HsmResult<KeyVersions> read_key_versions(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                         std::string_view label) {
  auto handles = find_secret_keys(api, session, label);
  if (!handles)
    return tl::unexpected(handles.error());
  if (handles->empty()) {
    return tl::unexpected(HsmError{HsmErrorKind::kKeyNotFound, CKR_OK, "no key with that label"});
  }
  KeyVersions key;
  for (CK_OBJECT_HANDLE handle : *handles) {
    auto info = read_key_info(api, session, handle);
    if (!info)
      return tl::unexpected(info.error());
    key.versions.push_back(*info);
  }
  std::sort(key.versions.begin(), key.versions.end(),
            [](const KeyInfo& a, const KeyInfo& b) { return a.version < b.version; });
  for (std::size_t i = 1; i < key.versions.size(); ++i) {
    if (key.versions[i].version == key.versions[i - 1].version) {
      return tl::unexpected(HsmError{HsmErrorKind::kDuplicateKey, CKR_OK,
                                     "two secret keys share the label and version " +
                                         std::to_string(key.versions[i].version) +
                                         ": refusing to pick one"});
    }
  }
  return key;
}

HsmResult<KeyVersions> KeyDirectory::find(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                          std::string_view label) {
  {
    std::shared_lock lock(mutex_);
    if (auto found = keys_.find(label); found != keys_.end())
      return found->second;
  }
  auto key = read_key_versions(api, session, label);
  if (!key)
    return tl::unexpected(key.error());
  std::unique_lock lock(mutex_);
  keys_.insert_or_assign(std::string(label), *key);
  return *key;
}

void KeyDirectory::forget(std::string_view label) {
  std::unique_lock lock(mutex_);
  if (auto found = keys_.find(label); found != keys_.end())
    keys_.erase(found);
}

namespace {}  // namespace

std::string_view version_state(const KeyInfo& version) {
  return version.encrypt ? "active" : version.decrypt ? "decrypt-only" : "unusable";
}

namespace {

std::string state_of(const KeyInfo& version) {
  return std::string(version_state(version));
}

// What changed between two readings of one key, for the operator.
void describe_changes(const std::string& label, const KeyVersions& before, const KeyVersions& after,
                      const std::function<void(const std::string&)>& changed) {
  if (before.disabled() != after.disabled())
    changed("key " + label + (after.disabled() ? " disabled" : " enabled"));
  for (const KeyInfo& version : after.versions) {
    const KeyInfo* old = before.find(version.version);
    std::string name = "key " + label + " version " + std::to_string(version.version);
    if (old == nullptr)
      changed(name + " appeared (" + state_of(version) + ")");
    else if (state_of(*old) != state_of(version))
      changed(name + " is now " + state_of(version));
  }
  for (const KeyInfo& version : before.versions) {
    if (after.find(version.version) == nullptr)
      changed("key " + label + " version " + std::to_string(version.version) + " is gone");
  }
}

}  // namespace

HsmResult<void> KeyDirectory::refresh(
    CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
    const std::function<void(const std::string& change)>& changed) {
  std::vector<std::pair<std::string, KeyVersions>> cached;
  {
    std::shared_lock lock(mutex_);
    cached.assign(keys_.begin(), keys_.end());
  }
  for (const auto& [label, before] : cached) {
    auto after = read_key_versions(api, session, label);
    if (!after && after.error().kind != HsmErrorKind::kKeyNotFound &&
        after.error().kind != HsmErrorKind::kDuplicateKey)
      return tl::unexpected(after.error());
    if (after)
      describe_changes(label, before, *after, changed);
    else
      changed("key " + label + ": " + after.error().message);
    std::unique_lock lock(mutex_);
    if (after)
      keys_.insert_or_assign(label, *after);
    else
      keys_.erase(label);
  }
  return {};
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
