// XKS request bodies parsed into typed values, with every validation of the spec, and the
// compact one-line JSON responses.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

#include "xks/proxy/xks/router.h"
#include "xks/proxy/xks/xks_error.h"
#include "xks/wire/request_metadata.h"

namespace xks::proxy {

using Bytes = std::vector<std::uint8_t>;

inline constexpr std::size_t kMaxCiphertextMetadataBytes = 20;
inline constexpr std::size_t kMaxAadBytes = 8192;

struct EncryptRequest {
  Bytes plaintext;
  std::optional<Bytes> aad;
  bool cdiv = false;  // ciphertextDataIntegrityValueAlgorithm SHA_256 asked for
};

struct DecryptRequest {
  Bytes ciphertext;
  Bytes iv;
  Bytes tag;
  std::optional<Bytes> aad;
  std::optional<Bytes> ciphertext_metadata;
};

struct XksRequest {
  wire::RequestMetadata metadata;
  std::optional<EncryptRequest> encrypt;  // set for Encrypt
  std::optional<DecryptRequest> decrypt;  // set for Decrypt
};

struct Rejection {
  XksError error;
  std::string message;
};

// Unknown fields and unknown kmsOperation values are accepted (spec: forward compatibility).
tl::expected<XksRequest, Rejection> parse_request(wire::Operation operation, std::string_view body);

// keyStatus is ENABLED or DISABLED.
std::string metadata_response(std::span<const std::string_view> key_usage, bool enabled);
// `cdiv` is the base64 CDIV, or empty when none was asked for; `ciphertext_metadata` is left
// out when empty.
std::string encrypt_response(std::span<const std::uint8_t> ciphertext,
                             std::span<const std::uint8_t> iv, std::span<const std::uint8_t> tag,
                             std::span<const std::uint8_t> ciphertext_metadata,
                             std::string_view cdiv);
std::string decrypt_response(std::span<const std::uint8_t> plaintext);

struct FleetMember {
  std::string id;
  std::string model;
  std::string health_status;  // ACTIVE | DEGRADED | UNAVAILABLE
};
std::string health_response(int fleet_size, std::string_view vendor, std::string_view model,
                            std::string_view ekm_vendor, std::span<const FleetMember> fleet);

// Spec appendix C: base64(SHA-256(AAD || ciphertextMetadata || IV || ciphertext || tag)).
std::string cdiv(std::span<const std::uint8_t> aad, std::span<const std::uint8_t> metadata,
                 std::span<const std::uint8_t> iv, std::span<const std::uint8_t> ciphertext,
                 std::span<const std::uint8_t> tag);

}  // namespace xks::proxy
