// Fuzz target: the proxy's own parsers on arbitrary bytes — the XKS JSON request parser for
// each operation (first byte picks it), strict base64, and the router.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "xks/proxy/xks/router.h"
#include "xks/wire/base64.h"
#include "xks_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xks::proxy;
  namespace wire = xks::wire;
  if (size == 0)
    return 0;
  auto operation = static_cast<wire::Operation>(data[0] % 4);
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  (void)parse_request(operation, input);
  if (auto decoded = wire::base64_decode(input)) {
    if (wire::base64_encode(*decoded) != input)
      __builtin_trap();  // strict: one encoding per value
  }
  static const std::vector<std::string> prefixes = {"", "/a", "/a/b"};
  (void)route(input, prefixes);
  return 0;
}
