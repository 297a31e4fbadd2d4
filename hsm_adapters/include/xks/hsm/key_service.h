// The operations the XKS handlers need, on one token: key metadata, AES-GCM encrypt and
// decrypt, and the start-up self-test. Each takes the request's deadline. A lost session is
// retried with another (after a token reset every pooled session may be stale, and each fails
// fast); a key handle gone stale is looked up again.
#pragma once

#include <chrono>
#include <string_view>

#include "xks/hsm/aes_gcm.h"
#include "xks/hsm/key_directory.h"
#include "xks/hsm/session_pool.h"
#include "xks/hsm/vendor_profile.h"

namespace xks::hsm {

class KeyService {
 public:
  using Deadline = SessionPool::Clock::time_point;

  KeyService(SessionPool& pool, VendorProfile profile);

  HsmResult<KeyInfo> metadata(std::string_view key_id, Deadline deadline);
  // `aad` is the HSM-level AAD (see xks_aad).
  HsmResult<GcmCiphertext> encrypt(std::string_view key_id, ByteView plaintext, ByteView aad,
                                   Deadline deadline);
  HsmResult<Bytes> decrypt(std::string_view key_id, ByteView ciphertext, ByteView iv, ByteView tag,
                           ByteView aad, Deadline deadline);

  // Encrypts a block with `key_id` and decrypts it back: proves the vendor profile works.
  HsmResult<void> self_test(std::string_view key_id, Deadline deadline);

  SessionPool& pool() { return pool_; }

 private:
  template <typename Operation>
  auto with_key(std::string_view key_id, Deadline deadline, Operation operation)
      -> decltype(operation(CK_SESSION_HANDLE{}, KeyInfo{}));

  SessionPool& pool_;
  VendorProfile profile_;
  KeyDirectory directory_;
};

}  // namespace xks::hsm
