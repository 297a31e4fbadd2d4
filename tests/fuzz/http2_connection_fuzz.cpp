// Fuzz target: the HTTP/2 server connection fed arbitrary bytes in arbitrary small pieces (the
// first byte seeds the piece sizes and when answers come back), with small limits. Traps if the
// connection ever holds more request bytes than its budget allows.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "http2_connection.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xks::proxy;
  if (size == 0)
    return 0;
  HttpLimits limits;
  limits.max_header_bytes = 2048;
  limits.max_body_bytes = 4096;
  limits.http2_max_concurrent_streams = 8;
  limits.http2_connection_buffer_bytes = 65535;
  std::vector<std::int32_t> pending;
  Http2Connection connection(
      limits, std::chrono::seconds(5),
      [&pending](std::int32_t id, HttpRequest) { pending.push_back(id); }, [](HttpRefusal) {},
      [](HttpRefusal) {
        return HttpResponse{400, "{}"};
      });
  std::uint32_t seed = data[0];
  std::size_t at = 1;
  std::string output;
  // A clock of its own: each piece arrives up to a second after the one before, and overdue
  // streams are expired now and then.
  Http2Connection::Clock::time_point now{};
  while (at < size) {
    seed = seed * 1103515245u + 12345u;
    std::size_t piece = std::min(std::size_t{1} + (seed >> 16) % 64, size - at);
    now += std::chrono::milliseconds((seed >> 4) % 1000);
    bool alive = connection.receive({data + at, piece}, now);
    at += piece;
    if ((seed >> 12) % 4 == 0)
      connection.expire(now);
    if (connection.buffered_bytes() >
        2 * limits.http2_connection_buffer_bytes + limits.max_header_bytes)
      __builtin_trap();
    if ((seed >> 8) % 2 == 0) {  // answer now, or later with the next ones
      for (std::int32_t id : pending)
        connection.answer(id, {200, "{}"});
      pending.clear();
    }
    output.clear();
    connection.send(output, 4096);
    if (!alive)
      break;
  }
  for (std::int32_t id : pending)
    connection.answer(id, {200, "{}"});
  output.clear();
  connection.send(output, 1 << 20);
  return 0;
}
