// SigV4 signing-key derivation and its cache.
#include "xks/sigv4/signing_key.h"

#include <openssl/crypto.h>

#include <mutex>

#include "digest.h"

namespace xks::sigv4 {

SigningKey derive_signing_key(std::string_view secret_access_key, std::string_view date,
                              std::string_view region, std::string_view service) {
  std::string seed = "AWS4";
  seed.append(secret_access_key);
  SigningKey key = detail::hmac_sha256(detail::as_bytes(seed), date);
  OPENSSL_cleanse(seed.data(), seed.size());
  key = detail::hmac_sha256(key, region);
  key = detail::hmac_sha256(key, service);
  return detail::hmac_sha256(key, "aws4_request");
}

std::string signature_hex(const SigningKey& key, std::string_view string_to_sign) {
  return detail::to_hex(detail::hmac_sha256_signing_key(key, string_to_sign));
}

SigningKeyCache::~SigningKeyCache() {
  wipe();
}

void SigningKeyCache::wipe() {
  for (auto& [name, key] : keys_)
    OPENSSL_cleanse(key.data(), key.size());
  keys_.clear();
}

namespace {

// Length-prefixed fields: no choice of region or service can make two tuples collide.
std::string cache_key(std::size_t credential, std::string_view date, std::string_view region,
                      std::string_view service) {
  std::string key = std::to_string(credential);
  key.reserve(key.size() + date.size() + region.size() + service.size() + 16);
  for (std::string_view field : {date, region, service}) {
    key.push_back(':');
    key.append(std::to_string(field.size())).push_back(':');
    key.append(field);
  }
  return key;
}

}  // namespace

SigningKey SigningKeyCache::get(std::size_t credential, std::string_view secret_access_key,
                                std::string_view date, std::string_view region,
                                std::string_view service) {
  std::string key = cache_key(credential, date, region, service);
  {
    std::shared_lock lock(mutex_);
    if (auto found = keys_.find(key); found != keys_.end())
      return found->second;
  }
  SigningKey derived = derive_signing_key(secret_access_key, date, region, service);
  std::unique_lock lock(mutex_);
  if (keys_.size() >= kMaxEntries)
    wipe();
  keys_.emplace(std::move(key), derived);
  return derived;
}

}  // namespace xks::sigv4
