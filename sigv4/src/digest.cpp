// SHA-256 and HMAC-SHA256 through OpenSSL.
#include "digest.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>
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

using MacContext = std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)>;

// An HMAC-SHA256 context: HMAC() would fetch the algorithm and build a context on every call
// (a third of a request's SigV4 cost).
MacContext new_hmac_context() {
  static EVP_MAC* const hmac = [] {
    EVP_MAC* fetched = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (fetched == nullptr)
      throw std::runtime_error("OpenSSL has no HMAC");
    return fetched;
  }();
  MacContext made(EVP_MAC_CTX_new(hmac), &EVP_MAC_CTX_free);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  if (!made || EVP_MAC_CTX_set_params(made.get(), params) != 1)
    throw std::runtime_error("HMAC-SHA256 unavailable");
  return made;
}

// Feeds `data` to a keyed (or re-keyed) context and returns the MAC.
Digest finish_mac(EVP_MAC_CTX* context, const std::uint8_t* key, std::size_t key_size,
                  std::string_view data) {
  Digest out{};
  std::size_t size = 0;
  if (EVP_MAC_init(context, key, key_size, nullptr) != 1 ||
      EVP_MAC_update(context, as_bytes(data).data(), data.size()) != 1 ||
      EVP_MAC_final(context, out.data(), &size, out.size()) != 1 || size != out.size()) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return out;
}

}  // namespace

Digest sha256(std::string_view data) {
  // One context per thread: EVP_Digest() would make and free one on every call.
  using Context = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
  thread_local Context context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  Digest out{};
  unsigned int size = 0;
  if (!context || EVP_DigestInit_ex2(context.get(), sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), out.data(), &size) != 1 || size != out.size()) {
    throw std::runtime_error("SHA256 failed");
  }
  return out;
}

Digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view data) {
  thread_local MacContext context = new_hmac_context();
  // Never a null key: EVP_MAC_init would take it as "keep the previous call's key".
  static const std::uint8_t kNoKey = 0;
  return finish_mac(context.get(), key.empty() ? &kNoKey : key.data(), key.size(), data);
}

Digest hmac_sha256_signing_key(const Digest& key, std::string_view data) {
  // Re-keying costs two SHA-256 blocks and five allocations in OpenSSL 3.0; a signing key
  // serves a whole day, so the context keeps the last one (as hmac_sha256's context keeps the
  // last key it was given): a removed credential's signing key stays in this thread's memory
  // until the thread signs under another key or ends.
  struct Keyed {
    MacContext context = new_hmac_context();
    Digest key{};
    bool keyed = false;
    ~Keyed() { OPENSSL_cleanse(key.data(), key.size()); }
  };
  thread_local Keyed keyed;
  bool same = keyed.keyed && CRYPTO_memcmp(keyed.key.data(), key.data(), key.size()) == 0;
  keyed.keyed = false;  // until this call has keyed the context without failing
  Digest out =
      finish_mac(keyed.context.get(), same ? nullptr : key.data(), same ? 0 : key.size(), data);
  keyed.key = key;
  keyed.keyed = true;
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
