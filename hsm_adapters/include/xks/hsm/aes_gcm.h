// AES-256-GCM through PKCS#11 as the XKS spec needs it: one C_Encrypt / C_Decrypt call with a
// buffer of the right size, the 16-byte tag split from or appended to the ciphertext, and every
// IV the HSM makes checked before it is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "xks/hsm/hsm_error.h"
#include "xks/hsm/pkcs11.h"
#include "xks/hsm/vendor_profile.h"

namespace xks::hsm {

inline constexpr std::size_t kGcmIvBytes = 12;
inline constexpr std::size_t kGcmTagBytes = 16;
inline constexpr std::size_t kMaxAadBytes = 0xffff;
inline constexpr std::size_t kMaxCiphertextMetadataBytes = 0xff;

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// XKS spec: the AAD given to the HSM is u16be(len AAD) || AAD || u8(len ctm) || ctm, where an
// absent AAD or metadata counts as empty. Longer inputs than the length fields hold fail.
HsmResult<Bytes> xks_aad(ByteView aad, ByteView ciphertext_metadata);

// AWS's sample XKS proxy gives the HSM u16be(len AAD) || SHA-256(AAD) (when there is an AAD)
// || u8(len ctm) || ctm instead: what a key store migrating from it decrypts with.
HsmResult<Bytes> aws_sample_aad(ByteView aad, ByteView ciphertext_metadata);

// The ciphertextMetadata this proxy returns from Encrypt (3 bytes, bound into the AAD as above):
// a format byte, 0x01, then the key version as u16be. Decrypt reads the version back from it.
inline constexpr std::uint8_t kVersionMetadataFormat = 0x01;
Bytes version_metadata(std::uint32_t version);
// The version in metadata this proxy wrote; nullopt for anything else.
std::optional<std::uint32_t> version_of_metadata(ByteView ciphertext_metadata);

struct GcmCiphertext {
  Bytes ciphertext;  // as long as the plaintext
  Bytes iv;          // 12 bytes
  Bytes tag;         // 16 bytes
};

HsmResult<GcmCiphertext> gcm_encrypt(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                     CK_OBJECT_HANDLE key, const VendorProfile& profile,
                                     ByteView plaintext, ByteView aad);

// `iv` is 12 or 16 bytes, `tag` 16. A failed authentication is kInvalidCiphertext.
HsmResult<Bytes> gcm_decrypt(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                             const VendorProfile& profile, ByteView ciphertext, ByteView iv,
                             ByteView tag, ByteView aad);

}  // namespace xks::hsm
