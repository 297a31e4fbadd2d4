// The four XKS API operations.
#pragma once

#include <cstdint>
#include <string_view>

namespace xks::proxy {

enum class XksOperation : std::uint8_t { kGetKeyMetadata, kEncrypt, kDecrypt, kGetHealthStatus };
inline constexpr std::size_t kXksOperationCount = 4;

std::string_view operation_name(XksOperation operation);

}  // namespace xks::proxy
