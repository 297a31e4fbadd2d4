// AES-256-GCM through PKCS#11.
#include "xks/hsm/aes_gcm.h"

#include <openssl/sha.h>

#include <algorithm>

namespace xks::hsm {

namespace {

// PKCS#11 takes non-const pointers for input it never writes; some modules reject a null
// pointer even for zero bytes.
CK_BYTE_PTR input_pointer(ByteView bytes) {
  static CK_BYTE empty = 0;
  return bytes.empty() ? &empty : const_cast<CK_BYTE_PTR>(bytes.data());
}

bool all_zero(ByteView bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

HsmError call_failed(std::string_view function, CK_RV rv) {
  HsmError error = HsmError::from_rv(function, rv);
  // The only failure that leaves the operation active: the session cannot be reused safely.
  if (rv == CKR_BUFFER_TOO_SMALL)
    error.kind = HsmErrorKind::kSessionLost;
  return error;
}

}  // namespace

HsmResult<Bytes> xks_aad(ByteView aad, ByteView ciphertext_metadata) {
  if (aad.size() > kMaxAadBytes || ciphertext_metadata.size() > kMaxCiphertextMetadataBytes) {
    return tl::unexpected(HsmError{HsmErrorKind::kOther, CKR_OK, "AAD or metadata too long"});
  }
  Bytes out;
  out.reserve(3 + aad.size() + ciphertext_metadata.size());
  out.push_back(static_cast<std::uint8_t>(aad.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(aad.size() & 0xff));
  out.insert(out.end(), aad.begin(), aad.end());
  out.push_back(static_cast<std::uint8_t>(ciphertext_metadata.size()));
  out.insert(out.end(), ciphertext_metadata.begin(), ciphertext_metadata.end());
  return out;
}

HsmResult<Bytes> aws_sample_aad(ByteView aad, ByteView ciphertext_metadata) {
  if (aad.size() > kMaxAadBytes || ciphertext_metadata.size() > kMaxCiphertextMetadataBytes) {
    return tl::unexpected(HsmError{HsmErrorKind::kOther, CKR_OK, "AAD or metadata too long"});
  }
  Bytes out;
  out.reserve(3 + SHA256_DIGEST_LENGTH + ciphertext_metadata.size());
  out.push_back(static_cast<std::uint8_t>(aad.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(aad.size() & 0xff));
  if (!aad.empty()) {
    std::uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(aad.data(), aad.size(), digest);
    out.insert(out.end(), std::begin(digest), std::end(digest));
  }
  out.push_back(static_cast<std::uint8_t>(ciphertext_metadata.size()));
  out.insert(out.end(), ciphertext_metadata.begin(), ciphertext_metadata.end());
  return out;
}

Bytes version_metadata(std::uint32_t version) {
  return {kVersionMetadataFormat, static_cast<std::uint8_t>(version >> 8),
          static_cast<std::uint8_t>(version & 0xff)};
}

std::optional<std::uint32_t> version_of_metadata(ByteView ciphertext_metadata) {
  if (ciphertext_metadata.size() != 3 || ciphertext_metadata[0] != kVersionMetadataFormat)
    return std::nullopt;
  std::uint32_t version = (std::uint32_t{ciphertext_metadata[1]} << 8) | ciphertext_metadata[2];
  if (version == 0)
    return std::nullopt;
  return version;
}

HsmResult<GcmCiphertext> gcm_encrypt(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                     CK_OBJECT_HANDLE key, const VendorProfile& profile,
                                     ByteView plaintext, ByteView aad) {
  const IvSource iv_source = profile.iv_source;
  GcmCiphertext result;
  result.iv.assign(kGcmIvBytes, 0);
  CK_GCM_PARAMS params{};
  params.pAAD = input_pointer(aad);
  params.ulAADLen = aad.size();
  params.ulTagBits = kGcmTagBytes * 8;
  if (iv_source != IvSource::kHsmAppendsToOutput) {
    params.pIv = result.iv.data();
    params.ulIvLen = kGcmIvBytes;
    params.ulIvBits = kGcmIvBytes * 8;
  }
  if (iv_source == IvSource::kProxyFromHsmRng) {
    if (CK_RV rv = api.C_GenerateRandom(session, result.iv.data(), kGcmIvBytes); rv != CKR_OK) {
      return tl::unexpected(call_failed("C_GenerateRandom", rv));
    }
    if (all_zero(result.iv)) {
      return tl::unexpected(
          HsmError{HsmErrorKind::kBadIv, CKR_OK, "the HSM's RNG returned an all-zero IV"});
    }
  }
  CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof params};
  if (CK_RV rv = api.C_EncryptInit(session, &mechanism, key); rv != CKR_OK) {
    return tl::unexpected(call_failed("C_EncryptInit", rv));
  }
  std::size_t appended_iv = iv_source == IvSource::kHsmAppendsToOutput ? kGcmIvBytes : 0;
  Bytes output(plaintext.size() + kGcmTagBytes + appended_iv);
  CK_ULONG output_length = output.size();
  if (CK_RV rv = api.C_Encrypt(session, input_pointer(plaintext), plaintext.size(), output.data(),
                               &output_length);
      rv != CKR_OK) {
    return tl::unexpected(call_failed("C_Encrypt", rv));
  }
  if (output_length != output.size()) {
    return tl::unexpected(HsmError{HsmErrorKind::kOther, CKR_OK,
                                   "C_Encrypt returned " + std::to_string(output_length) +
                                       " bytes, expected " + std::to_string(output.size())});
  }
  auto tag_begin = output.begin() + static_cast<std::ptrdiff_t>(plaintext.size());
  auto tag_end = tag_begin + kGcmTagBytes;
  result.tag.assign(tag_begin, tag_end);
  if (appended_iv != 0)
    result.iv.assign(tag_end, output.end());
  output.resize(plaintext.size());
  result.ciphertext = std::move(output);
  // Never trust an IV the HSM made: a zero IV means the HSM did not write it, and reusing an
  // IV under one key breaks GCM completely.
  if (iv_source != IvSource::kProxyFromHsmRng &&
      (result.iv.size() != kGcmIvBytes || all_zero(result.iv))) {
    return tl::unexpected(HsmError{HsmErrorKind::kBadIv, CKR_OK,
                                   "the HSM returned no usable IV (all zeros or wrong length)"});
  }
  return result;
}

HsmResult<Bytes> gcm_decrypt(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                             const VendorProfile& profile, ByteView ciphertext, ByteView iv,
                             ByteView tag, ByteView aad) {
  if ((iv.size() != 12 && iv.size() != 16) || tag.size() != kGcmTagBytes) {
    return tl::unexpected(
        HsmError{HsmErrorKind::kInvalidCiphertext, CKR_OK, "IV or tag of the wrong length"});
  }
  CK_GCM_PARAMS params{};
  params.pIv = const_cast<CK_BYTE_PTR>(iv.data());
  params.ulIvLen = iv.size();
  params.ulIvBits = iv.size() * 8;
  params.pAAD = input_pointer(aad);
  params.ulAADLen = aad.size();
  params.ulTagBits = kGcmTagBytes * 8;
  CK_MECHANISM mechanism{CKM_AES_GCM, &params, sizeof params};
  if (CK_RV rv = api.C_DecryptInit(session, &mechanism, key); rv != CKR_OK) {
    return tl::unexpected(call_failed("C_DecryptInit", rv));
  }
  Bytes input;
  input.reserve(ciphertext.size() + tag.size());
  input.insert(input.end(), ciphertext.begin(), ciphertext.end());
  input.insert(input.end(), tag.begin(), tag.end());
  // PKCS#11 modules size GCM output by the whole input (they cannot know the tag length
  // before C_DecryptInit's parameters are applied), so the buffer holds ciphertext + tag.
  Bytes plaintext(input.size());
  CK_ULONG plaintext_length = plaintext.size();
  if (CK_RV rv =
          api.C_Decrypt(session, input.data(), input.size(), plaintext.data(), &plaintext_length);
      rv != CKR_OK) {
    HsmError error = call_failed("C_Decrypt", rv);
    if (rv == profile.bad_tag_rv)
      error.kind = HsmErrorKind::kInvalidCiphertext;
    return tl::unexpected(std::move(error));
  }
  if (plaintext_length != ciphertext.size()) {
    return tl::unexpected(HsmError{HsmErrorKind::kOther, CKR_OK,
                                   "C_Decrypt returned " + std::to_string(plaintext_length) +
                                       " bytes, expected " + std::to_string(ciphertext.size())});
  }
  plaintext.resize(plaintext_length);
  return plaintext;
}

}  // namespace xks::hsm
