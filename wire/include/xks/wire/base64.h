// Strict standard base64 with padding (RFC 4648 section 4), as the XKS spec uses: no line
// breaks, no whitespace, no URL alphabet, no missing or extra padding, no non-zero pad bits.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xks::wire {

std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);
std::string base64_encode(std::span<const std::uint8_t> bytes);

}  // namespace xks::wire
