// Where the HSM PIN comes from: a file or an environment variable, never the config itself.
// The PIN is passed to C_Login as it is, so CloudHSM's "user:password" form works unchanged.
#pragma once

#include <cstdint>
#include <string>

#include "xks/hsm/hsm_error.h"

namespace xks::hsm {

struct PinSource {
  enum class From : std::uint8_t { kFile, kEnvironment };
  From from = From::kFile;
  std::string name;  // file path or variable name
};

// The PIN; one trailing newline of a file is dropped.
HsmResult<std::string> read_pin(const PinSource& source);

}  // namespace xks::hsm
