// SHA-256 and HMAC-SHA256 through OpenSSL, plus lower-case hex; private to sigv4.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace xks::sigv4::detail {

using Digest = std::array<std::uint8_t, 32>;

Digest sha256(std::string_view data);
Digest hmac_sha256(std::span<const std::uint8_t> key, std::string_view data);
// The same MAC for a key that repeats from call to call (a SigV4 signing key): cheaper when
// this thread's previous call had the same key.
Digest hmac_sha256_signing_key(const Digest& key, std::string_view data);
std::string to_hex(std::span<const std::uint8_t> bytes);

inline std::span<const std::uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace xks::sigv4::detail
