// Fuzz target: the strict configuration loader on arbitrary TOML text. Every input must end in
// a Config or a message naming the problem; nothing may crash or throw past the loader.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xks/proxy/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = xks::proxy::parse_config(text, "fuzz.toml");
  if (!config && config.error().empty())
    __builtin_trap();  // a refusal always says why
  return 0;
}
