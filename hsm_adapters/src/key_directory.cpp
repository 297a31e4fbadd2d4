// Key lookup by label and its cache.
#include "xks/hsm/key_directory.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <mutex>
#include <span>

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

namespace {

// Every object matching `query`.
HsmResult<std::vector<CK_OBJECT_HANDLE>> find_objects(CK_FUNCTION_LIST& api,
                                                      CK_SESSION_HANDLE session,
                                                      std::span<CK_ATTRIBUTE> query) {
  if (CK_RV rv = api.C_FindObjectsInit(session, query.data(), query.size()); rv != CKR_OK) {
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

}  // namespace

HsmResult<std::vector<CK_OBJECT_HANDLE>> find_secret_keys(CK_FUNCTION_LIST& api,
                                                          CK_SESSION_HANDLE session,
                                                          std::optional<std::string_view> label) {
  CK_OBJECT_CLASS secret_key = CKO_SECRET_KEY;
  CK_ATTRIBUTE query[] = {
      {CKA_CLASS, &secret_key, sizeof secret_key},
      {CKA_LABEL, label ? const_cast<char*>(label->data()) : nullptr, label ? label->size() : 0},
  };
  return find_objects(api, session, std::span(query, label ? 2 : 1));
}

std::uint64_t KeyInfo::lifetime_encryptions() const {
  if (!count)
    return encryptions;
  // `recorded` first: it is a value `made` had, so `made` read after it is never below it.
  std::uint64_t recorded = count->recorded.load(std::memory_order_acquire);
  std::uint64_t made = count->made.load(std::memory_order_relaxed);
  std::uint64_t unrecorded = made >= recorded ? made - recorded : 0;
  return encryptions > UINT64_MAX - unrecorded ? UINT64_MAX : encryptions + unrecorded;
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

}  // namespace

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

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

namespace {

bool all_of_class(std::string_view text, bool (*in_class)(char)) {
  return std::all_of(text.begin(), text.end(), in_class);
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f');
}

// The tag in `id`, when `id` is exactly one: "v=" first, each part once, nothing unknown.
std::optional<KeyInfo> parse_tag(std::string_view id) {
  if (!id.starts_with(kTagPrefix))
    return std::nullopt;
  KeyInfo tag;
  bool has_version = false;
  std::string_view rest = id.substr(kTagPrefix.size());
  for (bool first = true; !rest.empty() || first; first = false) {
    std::size_t end = rest.find(';');
    std::string_view item = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (first) {
      std::string_view digits = item.starts_with("v=") ? item.substr(2) : std::string_view();
      if (digits.empty() || digits.size() > 5 || digits.front() == '0' ||
          !all_of_class(digits, is_digit))
        return std::nullopt;
      tag.version = static_cast<std::uint32_t>(std::stoul(std::string(digits)));
      if (tag.version > kMaxKeyVersion)
        return std::nullopt;
      has_version = true;
    } else if (item.starts_with("created=") && tag.created.empty()) {
      std::string_view date = item.substr(8);
      if (date.size() != 10 || date[4] != '-' || date[7] != '-' ||
          !all_of_class(date.substr(0, 4), is_digit) ||
          !all_of_class(date.substr(5, 2), is_digit) || !all_of_class(date.substr(8, 2), is_digit))
        return std::nullopt;
      tag.created = date;
    } else if (item == "disabled" && !tag.disabled) {
      tag.disabled = true;
    } else if (item.starts_with("was=") && tag.was.empty()) {
      std::string_view was = item.substr(4);
      if (was.empty() || was.size() % 2 != 0 || !all_of_class(was, is_hex_digit))
        return std::nullopt;
      tag.was = was;
    } else {
      return std::nullopt;
    }
  }
  if (!has_version)
    return std::nullopt;
  return tag;
}

}  // namespace

void read_key_tag(std::string_view id, KeyInfo& key) {
  std::optional<KeyInfo> tag = parse_tag(id);
  key.tagged = tag.has_value();
  key.version = tag ? tag->version : 1;
  key.created = tag ? tag->created : "";
  key.disabled = tag && tag->disabled;
  // Another tool's id (even one that merely starts like a tag) is kept, to restore once the
  // proxy's tag is no longer needed.
  key.was = tag ? tag->was : hex(id);
}

std::string unhex(std::string_view text) {
  auto value = [](char c) { return is_digit(c) ? c - '0' : c - 'a' + 10; };
  std::string out;
  for (std::size_t i = 0; i + 1 < text.size(); i += 2)
    out += static_cast<char>(value(text[i]) * 16 + value(text[i + 1]));
  return out;
}

HsmResult<KeyInfo> read_key_info(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                 CK_OBJECT_HANDLE handle) {
  KeyInfo info;
  info.handle = handle;
  CK_BBOOL encrypt = CK_FALSE, decrypt = CK_FALSE, sign = CK_FALSE, verify = CK_FALSE,
           wrap = CK_FALSE, unwrap = CK_FALSE, sensitive = CK_FALSE, extractable = CK_TRUE,
           always_sensitive = CK_FALSE, never_extractable = CK_FALSE;

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
  };
  // CKR_ATTRIBUTE_TYPE_INVALID leaves the missing attribute's length at -1; the others are
  // still filled in, and an absent usage means "not allowed".
  CK_RV rv = api.C_GetAttributeValue(session, handle, attributes, std::size(attributes));
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) {
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
  // CKA_ID, whatever its length (another tool's may be long): the tag, or what it replaced.
  CK_ATTRIBUTE id_length{CKA_ID, nullptr, 0};
  std::string id;
  if (api.C_GetAttributeValue(session, handle, &id_length, 1) == CKR_OK &&
      id_length.ulValueLen != CK_UNAVAILABLE_INFORMATION) {
    id.resize(id_length.ulValueLen);
    CK_ATTRIBUTE value{CKA_ID, id.data(), id.size()};
    if (CK_RV id_rv = api.C_GetAttributeValue(session, handle, &value, 1); id_rv != CKR_OK)
      return tl::unexpected(HsmError::from_rv("C_GetAttributeValue", id_rv));
    id.resize(value.ulValueLen);
  }
  read_key_tag(id, info);
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
  for (KeyInfo& version : key.versions) {
    auto count = read_encryption_count(api, session, label, version.version);
    if (!count)
      return tl::unexpected(count.error());
    version.encryptions = count->value;
  }
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

HsmResult<std::shared_ptr<const KeyVersions>> KeyDirectory::find(CK_FUNCTION_LIST& api,
                                                                 CK_SESSION_HANDLE session,
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
  return counted(std::string(label), std::move(*key));
}

std::shared_ptr<const KeyVersions> KeyDirectory::counted(const std::string& label,
                                                         KeyVersions key) {
  auto& counts = counts_[label];
  for (KeyInfo& version : key.versions) {
    auto& count = counts[version.version];
    if (!count)
      count = std::make_shared<EncryptionCount>();
    version.count = count;
  }
  auto shared = std::make_shared<const KeyVersions>(std::move(key));
  keys_.insert_or_assign(label, shared);
  return shared;
}

void KeyDirectory::forget(std::string_view label) {
  std::unique_lock lock(mutex_);
  if (auto found = keys_.find(label); found != keys_.end())
    keys_.erase(found);
}

std::string_view version_state(const KeyInfo& version) {
  return version.encrypt ? "active" : version.decrypt ? "decrypt-only" : "unusable";
}

namespace {

// What changed between two readings of one key, for the operator.
void describe_changes(const std::string& label, const KeyVersions& before, const KeyVersions& after,
                      const std::function<void(const std::string&)>& changed) {
  if (before.disabled() != after.disabled())
    changed("key " + label + (after.disabled() ? " disabled" : " enabled"));
  for (const KeyInfo& version : after.versions) {
    const KeyInfo* old = before.find(version.version);
    std::string name = "key " + label + " version " + std::to_string(version.version);
    if (old == nullptr)
      changed(name + " appeared (" + std::string(version_state(version)) + ")");
    else if (version_state(*old) != version_state(version))
      changed(name + " is now " + std::string(version_state(version)));
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
  std::vector<std::pair<std::string, std::shared_ptr<const KeyVersions>>> cached;
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
      describe_changes(label, *before, *after, changed);
    else
      changed("key " + label + ": " + after.error().message);
    std::unique_lock lock(mutex_);
    if (after)
      counted(label, std::move(*after));
    else
      keys_.erase(label);
  }
  return {};
}

namespace {

constexpr std::uint64_t kRecordAfterCount = std::uint64_t{1} << 20;
constexpr auto kRecordAfterTime = std::chrono::minutes(1);

std::uint64_t unrecorded(const EncryptionCount& count) {
  return count.made.load(std::memory_order_relaxed) -
         count.recorded.load(std::memory_order_relaxed);
}

bool due(const EncryptionCount& count, bool all) {
  std::uint64_t pending = unrecorded(count);
  return pending != 0 && (all || pending >= kRecordAfterCount ||
                          std::chrono::steady_clock::now() - count.recorded_at >= kRecordAfterTime);
}

}  // namespace

bool KeyDirectory::encryptions_to_record(bool all) const {
  std::lock_guard record_lock(record_mutex_);
  std::shared_lock lock(mutex_);
  for (const auto& [label, key] : keys_) {
    for (const KeyInfo& version : key->versions) {
      if (version.count && due(*version.count, all))
        return true;
    }
  }
  return false;
}

HsmResult<void> KeyDirectory::record_encryptions(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                                 bool all) {
  std::lock_guard record_lock(record_mutex_);
  std::vector<std::pair<std::string, KeyInfo>> to_record;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [label, key] : keys_) {
      for (const KeyInfo& version : key->versions) {
        if (version.count && due(*version.count, all))
          to_record.emplace_back(label, version);
      }
    }
  }
  HsmResult<void> result;
  for (const auto& [label, version] : to_record) {
    EncryptionCount& count = *version.count;
    std::uint64_t made = count.made.load(std::memory_order_relaxed);
    std::uint64_t adding = made - count.recorded.load(std::memory_order_relaxed);
    // The count as it is now (other proxies add to it too), plus ours.
    auto added = add_encryptions(api, session, label, version.version, adding);
    if (!added) {
      result = tl::unexpected(added.error());
      continue;
    }
    count.recorded.store(made, std::memory_order_release);
    count.recorded_at = std::chrono::steady_clock::now();
  }
  return result;
}

std::vector<KeyDirectory::VersionCount> KeyDirectory::encryption_counts() const {
  std::vector<VersionCount> counts;
  std::shared_lock lock(mutex_);
  for (const auto& [label, key] : keys_) {
    for (const KeyInfo& version : key->versions) {
      counts.push_back({label, version.version,
                        version.count ? version.count->made.load(std::memory_order_relaxed) : 0,
                        version.lifetime_encryptions()});
    }
  }
  return counts;
}

namespace {

std::string count_application(std::uint32_t version) {
  return std::string(kEncryptionCountApplication) + " v=" + std::to_string(version);
}

}  // namespace

HsmResult<EncryptionCountObject> read_encryption_count(CK_FUNCTION_LIST& api,
                                                       CK_SESSION_HANDLE session,
                                                       std::string_view label,
                                                       std::uint32_t version) {
  CK_OBJECT_CLASS data = CKO_DATA;
  std::string application = count_application(version);
  CK_ATTRIBUTE query[] = {
      {CKA_CLASS, &data, sizeof data},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
      {CKA_APPLICATION, application.data(), application.size()},
  };
  // More than one only for an instant (a count is replaced by making the new one first), or
  // after a failed removal: the highest is the count (counts only grow).
  auto found = find_objects(api, session, query);
  if (!found)
    return tl::unexpected(found.error());
  EncryptionCountObject object;
  for (CK_OBJECT_HANDLE handle : *found) {
    object.handles.push_back(handle);
    // Decimal digits, at most 20; anything else counts as nothing recorded.
    char digits[20];
    CK_ATTRIBUTE value{CKA_VALUE, digits, sizeof digits};
    if (CK_RV value_rv = api.C_GetAttributeValue(session, handle, &value, 1);
        value_rv != CKR_OK && value_rv != CKR_BUFFER_TOO_SMALL)
      return tl::unexpected(HsmError::from_rv("C_GetAttributeValue", value_rv));
    std::uint64_t parsed = 0;
    const char* last = digits + std::min<std::size_t>(value.ulValueLen, sizeof digits);
    auto [end, error] = std::from_chars(digits, last, parsed);
    if (value.ulValueLen != 0 && value.ulValueLen <= sizeof digits && error == std::errc() &&
        end == last)
      object.value = std::max(object.value, parsed);
  }
  return object;
}

HsmResult<void> add_encryptions(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                std::string_view label, std::uint32_t version,
                                std::uint64_t adding) {
  auto current = read_encryption_count(api, session, label, version);
  if (!current)
    return tl::unexpected(current.error());
  std::uint64_t total = current->value > UINT64_MAX - adding ? UINT64_MAX : current->value + adding;
  // PKCS#11 lets a data object's value be read-only once made: the new count is a new object,
  // then the old ones go.
  std::string digits = std::to_string(total);
  CK_OBJECT_CLASS data = CKO_DATA;
  CK_BBOOL yes = CK_TRUE;
  std::string application = count_application(version);
  CK_ATTRIBUTE attributes[] = {
      {CKA_CLASS, &data, sizeof data},
      {CKA_TOKEN, &yes, sizeof yes},
      {CKA_PRIVATE, &yes, sizeof yes},
      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
      {CKA_APPLICATION, application.data(), application.size()},
      {CKA_VALUE, digits.data(), digits.size()},
  };
  CK_OBJECT_HANDLE created = CK_INVALID_HANDLE;
  if (CK_RV rv = api.C_CreateObject(session, attributes, std::size(attributes), &created);
      rv != CKR_OK)
    return tl::unexpected(HsmError::from_rv("C_CreateObject", rv));
  for (CK_OBJECT_HANDLE old : current->handles)
    api.C_DestroyObject(session, old);  // one left behind is only read as a lower count
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
