// The four XKS API operations (spec "XKS Proxy APIs"): their names in the spec (and in KMS's
// requestMetadata, metrics and the audit log) and the last segment of their URI path.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace xks::wire {

enum class Operation : std::uint8_t { kGetKeyMetadata, kEncrypt, kDecrypt, kGetHealthStatus };
inline constexpr std::size_t kOperationCount = 4;
inline constexpr std::array<Operation, kOperationCount> kOperations = {
    Operation::kGetKeyMetadata, Operation::kEncrypt, Operation::kDecrypt,
    Operation::kGetHealthStatus};

// "GetKeyMetadata", "Encrypt", "Decrypt", "GetHealthStatus".
std::string_view operation_name(Operation operation);
// The URI's last segment: "metadata", "encrypt", "decrypt" (after /keys/<id>/), "health".
std::string_view uri_name(Operation operation);
std::optional<Operation> operation_from_uri_name(std::string_view name);

}  // namespace xks::wire
