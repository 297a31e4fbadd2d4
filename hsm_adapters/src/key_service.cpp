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
    -> decltype(operation(CK_SESSION_HANDLE{}, KeyInfo{})) {
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
        key ? operation(lease->handle(), *key)
            : decltype(operation(CK_SESSION_HANDLE{}, KeyInfo{}))(tl::unexpected(key.error()));
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

HsmResult<KeyInfo> KeyService::metadata(std::string_view key_id, Deadline deadline) {
  return with_key(key_id, deadline,
                  [](CK_SESSION_HANDLE, const KeyInfo& key) -> HsmResult<KeyInfo> { return key; });
}

HsmResult<GcmCiphertext> KeyService::encrypt(std::string_view key_id, ByteView plaintext,
                                             ByteView aad, Deadline deadline) {
  return with_key(key_id, deadline,
                  [&](CK_SESSION_HANDLE session, const KeyInfo& key) -> HsmResult<GcmCiphertext> {
                    if (!key.is_aes_256())
                      return tl::unexpected(usage_error("not an AES-256 key"));
                    if (!key.encrypt)
                      return tl::unexpected(usage_error("key does not allow ENCRYPT"));
                    return gcm_encrypt(pool_.api(), session, key.handle, profile_, plaintext, aad);
                  });
}

HsmResult<Bytes> KeyService::decrypt(std::string_view key_id, ByteView ciphertext, ByteView iv,
                                     ByteView tag, ByteView aad, Deadline deadline) {
  return with_key(
      key_id, deadline, [&](CK_SESSION_HANDLE session, const KeyInfo& key) -> HsmResult<Bytes> {
        if (!key.is_aes_256())
          return tl::unexpected(usage_error("not an AES-256 key"));
        if (!key.decrypt)
          return tl::unexpected(usage_error("key does not allow DECRYPT"));
        return gcm_decrypt(pool_.api(), session, key.handle, profile_, ciphertext, iv, tag, aad);
      });
}

HsmResult<void> KeyService::self_test(std::string_view key_id, Deadline deadline) {
  static constexpr std::uint8_t kBlock[32] = {'x', 'k', 's', '-', 'p', 'r', 'o', 'x', 'y', ' ',
                                              's', 'e', 'l', 'f', '-', 't', 'e', 's', 't'};
  static constexpr std::uint8_t kAad[] = {0, 4, 'x', 'k', 's', '!', 0};
  auto sealed = encrypt(key_id, kBlock, kAad, deadline);
  if (!sealed)
    return tl::unexpected(sealed.error());
  auto opened = decrypt(key_id, sealed->ciphertext, sealed->iv, sealed->tag, kAad, deadline);
  if (!opened)
    return tl::unexpected(opened.error());
  if (!std::equal(opened->begin(), opened->end(), std::begin(kBlock), std::end(kBlock))) {
    return tl::unexpected(HsmError{HsmErrorKind::kOther, CKR_OK,
                                   "self-test: decrypt did not return what was encrypted"});
  }
  return {};
}

}  // namespace xks::hsm
