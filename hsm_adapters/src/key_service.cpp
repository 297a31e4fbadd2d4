// Key operations with retry on lost sessions and stale handles.
#include "xks/hsm/key_service.h"

namespace xks::hsm {

namespace {

// Errors another session may not have: a lost session or stale handle, or a device error on
// this session's connection (all four XKS operations are safe to repeat). A bad tag or a key
// the HSM refuses is the answer, never retried.
bool worth_retrying(HsmErrorKind kind) {
  return kind == HsmErrorKind::kSessionLost || kind == HsmErrorKind::kKeyHandleInvalid ||
         kind == HsmErrorKind::kUnavailable;
}

HsmError late() {
  return {HsmErrorKind::kBusy, CKR_OK, "the request's deadline passed before the HSM call"};
}

HsmError usage_error(std::string message) {
  return {HsmErrorKind::kKeyUsage, CKR_OK, std::move(message)};
}

}  // namespace

KeyService::KeyService(SessionPool& pool, VendorProfile profile)
    : pool_(pool), profile_(std::move(profile)) {}

template <typename Operation>
auto KeyService::with_key(std::string_view key_id, Deadline deadline, Operation operation)
    -> decltype(operation(CK_SESSION_HANDLE{}, KeyVersions{})) {
  // One attempt per session and one more; a stale key handle is looked up again without
  // counting as an attempt (a token that dropped every session may renumber its objects).
  std::size_t attempts_left = pool_.size() + 1;
  std::size_t lookups_left = 2;
  // A device error may be the request's own (not the session's): two more tries, not one per
  // session, so that one poisoned request cannot close the whole pool.
  std::size_t device_retries_left = 2;
  for (;;) {
    auto lease = pool_.acquire(deadline);
    if (!lease)
      return tl::unexpected(lease.error());
    // Work that can no longer be answered in time is not started (checked before each call).
    if (SessionPool::Clock::now() >= deadline)
      return tl::unexpected(late());
    auto key = directory_.find(pool_.api(), lease->handle(), key_id);
    if (key && SessionPool::Clock::now() >= deadline)
      return tl::unexpected(late());
    auto result =
        key ? operation(lease->handle(), **key)
            : decltype(operation(CK_SESSION_HANDLE{}, KeyVersions{}))(tl::unexpected(key.error()));
    if (result)
      return result;
    const HsmError& error = result.error();
    lease->report(error);
    bool stale_handle = error.kind == HsmErrorKind::kKeyHandleInvalid;
    if (stale_handle)
      directory_.forget(key_id);
    if (SessionPool::Clock::now() >= deadline || !worth_retrying(error.kind))
      return result;
    if (stale_handle && lookups_left > 0) {
      --lookups_left;
      continue;
    }
    if (error.kind == HsmErrorKind::kUnavailable && device_retries_left-- == 0)
      return result;
    if (--attempts_left == 0)
      return result;
  }
}

namespace {

// The checks every use of a version makes.
HsmResult<void> usable(const KeyVersions& key, const KeyInfo& version, KeyUse use) {
  if (key.disabled())
    return tl::unexpected(HsmError{HsmErrorKind::kKeyDisabled, CKR_OK, "the key is disabled"});
  if (!version.is_protected() && !use.allow_unprotected) {
    return tl::unexpected(
        HsmError{HsmErrorKind::kUnprotectedKey, CKR_OK, "the key is extractable or not sensitive"});
  }
  if (!version.is_aes_256())
    return tl::unexpected(usage_error("not an AES-256 key"));
  return {};
}

}  // namespace

HsmResult<KeySummary> KeyService::metadata(std::string_view key_id, KeyUse use, Deadline deadline) {
  return with_key(key_id, deadline,
                  [&](CK_SESSION_HANDLE, const KeyVersions& key) -> HsmResult<KeySummary> {
                    const KeyInfo& active = key.active();
                    if (!active.is_protected() && !use.allow_unprotected) {
                      return tl::unexpected(HsmError{HsmErrorKind::kUnprotectedKey, CKR_OK,
                                                     "the key is extractable or not sensitive"});
                    }
                    return KeySummary{active, key.disabled()};
                  });
}

HsmResult<Sealed> KeyService::encrypt(std::string_view key_id, ByteView plaintext, ByteView aad,
                                      KeyUse use, Deadline deadline) {
  return with_key(key_id, deadline,
                  [&](CK_SESSION_HANDLE session, const KeyVersions& key) -> HsmResult<Sealed> {
                    const KeyInfo& version = key.active();
                    if (auto checked = usable(key, version, use); !checked)
                      return tl::unexpected(checked.error());
                    if (!version.encrypt)
                      return tl::unexpected(usage_error("key does not allow ENCRYPT"));
                    Sealed sealed;
                    sealed.version = version.version;
                    sealed.ciphertext_metadata = version_metadata(version.version);
                    auto hsm_aad = xks_aad(aad, sealed.ciphertext_metadata);
                    if (!hsm_aad)
                      return tl::unexpected(hsm_aad.error());
                    // Every attempt counts: a failed one may have used an IV too.
                    version.count->made.fetch_add(1, std::memory_order_relaxed);
                    auto gcm = gcm_encrypt(pool_.api(), session, version.handle, profile_,
                                           plaintext, *hsm_aad);
                    if (!gcm)
                      return tl::unexpected(gcm.error());
                    sealed.gcm = std::move(*gcm);
                    return sealed;
                  });
}

HsmResult<Bytes> KeyService::decrypt(std::string_view key_id, ByteView ciphertext, ByteView iv,
                                     ByteView tag, ByteView aad, ByteView ciphertext_metadata,
                                     KeyUse use, Deadline deadline) {
  const bool from_sample =
      use.aws_sample_metadata != nullptr &&
      std::equal(ciphertext_metadata.begin(), ciphertext_metadata.end(),
                 use.aws_sample_metadata->begin(), use.aws_sample_metadata->end());
  bool looked_again = false;
  return with_key(
      key_id, deadline, [&](CK_SESSION_HANDLE session, const KeyVersions& key) -> HsmResult<Bytes> {
        std::optional<std::uint32_t> number = ciphertext_metadata.empty() || from_sample
                                                  ? 1u
                                                  : version_of_metadata(ciphertext_metadata);
        const KeyInfo* version = number ? key.find(*number) : nullptr;
        if (version == nullptr && number && !looked_again) {
          // Perhaps made since the cache was filled (another HSM of the fleet may have encrypted
          // with it first): the key is read again, once.
          looked_again = true;
          return tl::unexpected(
              HsmError{HsmErrorKind::kKeyHandleInvalid, CKR_OK, "version not in the cache"});
        }
        if (version == nullptr) {
          return tl::unexpected(HsmError{HsmErrorKind::kInvalidCiphertext, CKR_OK,
                                         "ciphertextMetadata names no version of the key"});
        }
        if (auto checked = usable(key, *version, use); !checked)
          return tl::unexpected(checked.error());
        if (!version->decrypt)
          return tl::unexpected(usage_error("key does not allow DECRYPT"));
        // This proxy's AAD, unless the metadata is the sample's own (and not also possibly ours:
        // an empty one, which both write).
        HsmResult<Bytes> opened = tl::unexpected(HsmError{});
        if (!from_sample || ciphertext_metadata.empty()) {
          auto hsm_aad = xks_aad(aad, ciphertext_metadata);
          if (!hsm_aad)
            return tl::unexpected(hsm_aad.error());
          opened = gcm_decrypt(pool_.api(), session, version->handle, profile_, ciphertext, iv, tag,
                               *hsm_aad);
          if (opened || !from_sample || opened.error().kind != HsmErrorKind::kInvalidCiphertext)
            return opened;
        }
        auto sample_aad = aws_sample_aad(aad, ciphertext_metadata);
        if (!sample_aad)
          return tl::unexpected(sample_aad.error());
        return gcm_decrypt(pool_.api(), session, version->handle, profile_, ciphertext, iv, tag,
                           *sample_aad);
      });
}

HsmResult<void> KeyService::record_encryptions(bool all) {
  if (!profile_.token_data_objects || !directory_.encryptions_to_record(all))
    return {};
  return pool_.with_read_write_session([&](CK_SESSION_HANDLE session) {
    return directory_.record_encryptions(pool_.api(), session, all);
  });
}

HsmResult<void> KeyService::refresh_keys(
    const std::function<void(const std::string& change)>& changed, Deadline deadline) {
  auto lease = pool_.acquire(deadline);
  if (!lease)
    return tl::unexpected(lease.error());
  auto refreshed = directory_.refresh(pool_.api(), lease->handle(), changed);
  if (!refreshed)
    lease->report(refreshed.error());
  return refreshed;
}

HsmResult<void> KeyService::self_test(std::string_view key_id, Deadline deadline) {
  static constexpr std::uint8_t kBlock[32] = {'x', 'k', 's', '-', 'p', 'r', 'o', 'x', 'y', ' ',
                                              's', 'e', 'l', 'f', '-', 't', 'e', 's', 't'};
  static constexpr std::uint8_t kAad[] = {'x', 'k', 's', '!'};
  // The health key is the proxy's own: whatever its protection, it only ever sees this block.
  KeyUse use;
  use.allow_unprotected = true;
  auto sealed = encrypt(key_id, kBlock, kAad, use, deadline);
  if (!sealed)
    return tl::unexpected(sealed.error());
  auto opened = decrypt(key_id, sealed->gcm.ciphertext, sealed->gcm.iv, sealed->gcm.tag, kAad,
                        sealed->ciphertext_metadata, use, deadline);
  if (!opened)
    return tl::unexpected(opened.error());
  if (!std::equal(opened->begin(), opened->end(), std::begin(kBlock), std::end(kBlock))) {
    return tl::unexpected(HsmError{HsmErrorKind::kOther, CKR_OK,
                                   "self-test: decrypt did not return what was encrypted"});
  }
  return {};
}

}  // namespace xks::hsm
