// Fuzz target: the HTTP/1.1 request reader fed arbitrary bytes in arbitrary small pieces (the
// first byte seeds the piece sizes), with small limits so that every limit is reached. Traps if
// the reader ever offers no room while it still needs bytes, or keeps a body over the limit.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "http1_request_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xks::proxy;
  if (size == 0)
    return 0;
  HttpLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_body_bytes = 2048;
  Http1RequestReader reader(limits);
  std::uint32_t seed = data[0];
  std::size_t at = 1;
  while (at < size) {
    seed = seed * 1103515245u + 12345u;
    auto space = reader.prepare();
    if (space.size() == 0)
      __builtin_trap();
    std::size_t piece = std::min({std::size_t{1} + (seed >> 16) % 64, space.size(), size - at});
    std::memcpy(space.data(), data + at, piece);
    at += piece;
    auto status = reader.commit(piece);
    while (status == Http1RequestReader::Status::kComplete) {
      if (reader.take_request().body.size() > limits.max_body_bytes)
        __builtin_trap();
      reader.next_request();
      status = reader.parse();
    }
    if (status == Http1RequestReader::Status::kRefused)
      break;
  }
  return 0;
}
