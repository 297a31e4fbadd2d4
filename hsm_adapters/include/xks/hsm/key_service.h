// The operations the XKS handlers need, on one token: key metadata, AES-GCM encrypt and
// decrypt, and the start-up self-test. Each takes the request's deadline. A lost session is
// retried with another (after a token reset every pooled session may be stale, and each fails
// fast); a key handle gone stale is looked up again.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string_view>

#include "xks/hsm/aes_gcm.h"
#include "xks/hsm/key_directory.h"
#include "xks/hsm/session_pool.h"
#include "xks/hsm/vendor_profile.h"

namespace xks::hsm {

// How a key store may use keys: by default only protected ones (sensitive, not extractable).
struct KeyUse {
  bool allow_unprotected = false;
  // Migrating from AWS's sample proxy: Decrypt also opens what it encrypted (aws_sample_aad)
  // when a request's ciphertextMetadata is the one it was configured with (this, maybe empty).
  std::shared_ptr<const Bytes> aws_sample_metadata;
};

// What GetKeyMetadata reports: the active version's attributes and the key's state.
struct KeySummary {
  KeyInfo active;
  bool disabled = false;
};

struct Sealed {
  GcmCiphertext gcm;
  Bytes ciphertext_metadata;  // version_metadata(version)
  std::uint32_t version = 1;
};

class KeyService {
 public:
  using Deadline = SessionPool::Clock::time_point;

  KeyService(SessionPool& pool, VendorProfile profile);

  HsmResult<KeySummary> metadata(std::string_view key_id, KeyUse use, Deadline deadline);
  // With the active version; `aad` is the request's AAD (the HSM authenticates xks_aad of it
  // and the returned metadata).
  HsmResult<Sealed> encrypt(std::string_view key_id, ByteView plaintext, ByteView aad, KeyUse use,
                            Deadline deadline);
  // With the version `ciphertext_metadata` names (this proxy's format), or version 1 when it is
  // empty; other metadata is kInvalidCiphertext. A version the cache lacks is looked up again.
  // With KeyUse::aws_sample_metadata, metadata equal to it opens with version 1 and the sample's
  // AAD (an empty one tries this proxy's AAD first).
  HsmResult<Bytes> decrypt(std::string_view key_id, ByteView ciphertext, ByteView iv, ByteView tag,
                           ByteView aad, ByteView ciphertext_metadata, KeyUse use,
                           Deadline deadline);

  // Encrypts a block with `key_id` and decrypts it back: proves the vendor profile works.
  HsmResult<void> self_test(std::string_view key_id, Deadline deadline);
  // Reads the cached keys again (see KeyDirectory::refresh) with a pooled session.
  HsmResult<void> refresh_keys(const std::function<void(const std::string& change)>& changed,
                               Deadline deadline);
  // Adds the encryptions made since the last time to the versions' tags (see KeyDirectory::
  // record_encryptions; with `all`, every one, else those due) with a read-write session.
  HsmResult<void> record_encryptions(bool all);
  std::vector<KeyDirectory::VersionCount> encryption_counts() const {
    return directory_.encryption_counts();
  }

  SessionPool& pool() { return pool_; }

 private:
  template <typename Operation>
  auto with_key(std::string_view key_id, Deadline deadline, Operation operation)
      -> decltype(operation(CK_SESSION_HANDLE{}, KeyVersions{}));

  SessionPool& pool_;
  VendorProfile profile_;
  KeyDirectory directory_;
};

}  // namespace xks::hsm
