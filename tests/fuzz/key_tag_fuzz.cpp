// Fuzz target: reading a key version's CKA_ID tag (xks/hsm/key_directory.h), token data that
// another tool may have written. What reads as a tag writes back to the same reading; anything
// else is kept whole, to be restored.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xks/hsm/key_directory.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xks::hsm;
  std::string_view id(reinterpret_cast<const char*>(data), size);
  KeyInfo key;
  read_key_tag(id, key);
  if (!key.tagged) {
    if (unhex(key.was) != id || key.version != 1 || key.disabled)
      __builtin_trap();
    return 0;
  }
  KeyInfo again;
  read_key_tag(key_tag(key), again);
  if (!again.tagged || again.version != key.version || again.created != key.created ||
      again.disabled != key.disabled || again.was != key.was || key.version == 0 ||
      key.version > kMaxKeyVersion)
    __builtin_trap();
  return 0;
}
