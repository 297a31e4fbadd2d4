// Where the HSM PIN comes from: a file or an environment variable, never the config itself.
// The PIN is passed to C_Login as it is, so CloudHSM's "user:password" form works unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "xks/hsm/hsm_error.h"

namespace xks::hsm {

struct PinSource {
  enum class From : std::uint8_t { kFile, kEnvironment };
  From from = From::kFile;
  std::string name;  // file path or variable name
  // The PIN of a variable, when it was read beforehand (the proxy reads it with its
  // configuration, so that the variable can be scrubbed before any thread starts).
  std::string value;

  bool operator==(const PinSource&) const = default;
};

// The PIN; one trailing newline of a file is dropped. Read without buffers that would keep a
// copy; at most kMaxPinBytes.
HsmResult<std::string> read_pin(const PinSource& source);
inline constexpr std::size_t kMaxPinBytes = 255;

// Overwrites every byte a string's buffer holds, including what a move left in a short
// string's inline buffer, then empties it: for PINs once they are passed on.
void wipe(std::string& secret);

}  // namespace xks::hsm
