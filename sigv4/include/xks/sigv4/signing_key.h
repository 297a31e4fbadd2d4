// SigV4 signing keys: derivation (four chained HMACs) and a thread-safe cache, so that a
// verification with a known credential on a known day costs one HMAC instead of five. The
// cache never holds a secret: entries are named by the caller's credential number, and keys
// are wiped when dropped.
#pragma once

#include <array>
#include <cstdint>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace xks::sigv4 {

using SigningKey = std::array<std::uint8_t, 32>;

SigningKey derive_signing_key(std::string_view secret_access_key, std::string_view date,
                              std::string_view region, std::string_view service);

// Lower-case hex HMAC-SHA256 of the string to sign: the request signature.
std::string signature_hex(const SigningKey& key, std::string_view string_to_sign);

class SigningKeyCache {
 public:
  SigningKeyCache() = default;
  SigningKeyCache(const SigningKeyCache&) = delete;
  SigningKeyCache& operator=(const SigningKeyCache&) = delete;
  ~SigningKeyCache();

  // Keyed by (credential, date, region, service): `credential` names `secret_access_key` for
  // the cache's whole life (e.g. its index in an immutable list), so that no copy of the secret
  // is made or kept; a new list of credentials needs a new cache.
  SigningKey get(std::size_t credential, std::string_view secret_access_key, std::string_view date,
                 std::string_view region, std::string_view service);

 private:
  // Callers verify the date (±skew) and region before asking, so entries are few; the
  // bound only stops growth over months of uptime.
  static constexpr std::size_t kMaxEntries = 256;

  void wipe();  // exclusive lock held

  std::shared_mutex mutex_;
  std::unordered_map<std::string, SigningKey> keys_;
};

}  // namespace xks::sigv4
