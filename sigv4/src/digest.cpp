// SHA-256 and HMAC-SHA256 through OpenSSL.
#include "digest.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace xks::sigv4::detail {

namespace {

// Fetched once: OpenSSL 3's implicit fetch inside EVP_sha256() users costs a lookup per call.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr)
      throw std::runtime_error("OpenSSL has no SHA256");
    return fetched;
  }();
  return md;
}

}  // namespace

Digest sha256(std::string_view data) {
  Digest out{};
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &size, sha256_md(), nullptr) != 1 ||
      size != out.size()) {
    throw std::runtime_error("SHA256 failed");
  }
  return out;
}

Digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view data) {
  Digest out{};
  unsigned int size = 0;
  if (HMAC(sha256_md(), key.data(), static_cast<int>(key.size()), as_bytes(data).data(),
           data.size(), out.data(), &size) == nullptr ||
      size != out.size()) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return out;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(bytes.size() * 2, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    hex[2 * i] = kDigits[bytes[i] >> 4];
    hex[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return hex;
}

}  // namespace xks::sigv4::detail
