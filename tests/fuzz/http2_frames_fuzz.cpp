// Fuzz target: the HTTP/2 server connection driven by hostile but well-framed frame sequences.
// Raw bytes rarely get past the preface and frame headers, so here the input is a script: each
// step picks a frame (HEADERS with a real HPACK block, CONTINUATION, DATA, RST_STREAM,
// WINDOW_UPDATE, PRIORITY, SETTINGS, PING, GOAWAY), its stream, flags and sizes, or moves the
// clock on (expiring overdue streams) or answers what reached the handler. Traps if the
// connection holds more than its budget, hands out more requests than allowed, or writes
// anything that is not a sequence of whole frames.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "http2_connection.h"

namespace {

using xks::proxy::Http2Connection;

// Reads the script; past its end, zeros.
class Script {
 public:
  Script(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  std::uint32_t number(std::uint32_t limit) {
    std::uint32_t value = static_cast<std::uint32_t>(byte()) << 8 | byte();
    return limit == 0 ? 0 : value % limit;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

void append_frame(std::string& out, std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                  const std::string& payload) {
  std::size_t length = payload.size();
  out.push_back(static_cast<char>(length >> 16));
  out.push_back(static_cast<char>(length >> 8));
  out.push_back(static_cast<char>(length));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((stream >> shift) & 0xff));
  out += payload;
}

void append_u32(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((value >> shift) & 0xff));
}

// An HPACK literal field without indexing, names and values under 127 bytes.
void append_field(std::string& out, const std::string& name, const std::string& value) {
  out.push_back(0x00);
  out.push_back(static_cast<char>(name.size()));
  out += name;
  out.push_back(static_cast<char>(value.size()));
  out += value;
}

std::string header_block(Script& script) {
  std::string block;
  block.push_back(static_cast<char>(0x83));  // :method POST
  block.push_back(static_cast<char>(0x87));  // :scheme https
  static const char* const kPaths[] = {"/example/kms/xks/v1/health",
                                       "/example/kms/xks/v1/keys/foo/encrypt", "/x", ""};
  append_field(block, ":path", kPaths[script.byte() % 4]);
  append_field(block, ":authority", "localhost");
  std::uint8_t extra = script.byte() % 6;
  for (std::uint8_t i = 0; i < extra; ++i) {
    switch (script.byte() % 4) {
      case 0:
        append_field(block, "content-length", std::to_string(script.number(70000)));
        break;
      case 1:
        append_field(block, "x-pad", std::string(script.byte() % 120, 'p'));
        break;
      case 2:
        block.push_back(static_cast<char>(0x3f));  // dynamic table size update
        block.push_back(static_cast<char>(script.byte() & 0x7f));
        break;
      default:
        block.push_back(static_cast<char>(0x80 | (script.byte() % 70)));  // indexed field
        break;
    }
  }
  return block;
}

// Every byte the server sends must be whole frames (a 9-byte header and its payload).
void check_frames(const std::string& output, std::string& pending) {
  pending += output;
  std::size_t at = 0;
  while (pending.size() - at >= 9) {
    std::size_t length =
        (static_cast<std::size_t>(static_cast<std::uint8_t>(pending[at])) << 16) |
        (static_cast<std::size_t>(static_cast<std::uint8_t>(pending[at + 1])) << 8) |
        static_cast<std::uint8_t>(pending[at + 2]);
    if (length > 16384)
      __builtin_trap();  // over the default SETTINGS_MAX_FRAME_SIZE we never raise
    if (pending.size() - at < 9 + length)
      break;
    at += 9 + length;
  }
  pending.erase(0, at);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xks::proxy;
  HttpLimits limits;
  limits.max_header_bytes = 2048;
  limits.max_body_bytes = 4096;
  limits.http2_max_concurrent_streams = 8;
  limits.http2_connection_buffer_bytes = 65535;
  limits.http2_max_resets_per_second = 20;
  std::vector<std::int32_t> pending;
  std::size_t handed_out = 0;
  Http2Connection connection(
      limits, std::chrono::seconds(5),
      [&](std::int32_t id, HttpRequest) {
        pending.push_back(id);
        if (++handed_out > limits.http2_max_concurrent_streams)
          __builtin_trap();
      },
      [](HttpRefusal) {},
      [](HttpRefusal) {
        return HttpResponse{400, "{}"};
      });
  Script script(data, size);
  Http2Connection::Clock::time_point now{};
  std::string output;
  std::string unparsed;
  std::string input = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  append_frame(input, 0x4, 0, 0, "");  // SETTINGS
  std::uint32_t next_stream = 1;
  bool alive = true;
  for (int step = 0; step < 256 && !script.done() && alive; ++step) {
    std::uint8_t op = script.byte();
    // A stream: a new one, or one used before (or stream 0, where frames are illegal).
    std::uint32_t stream = script.byte() % 4 == 0 ? next_stream : 1 + 2 * script.number(16);
    if (script.byte() % 32 == 0)
      stream = 0;
    std::uint8_t flags = script.byte();
    std::string payload;
    switch (op % 12) {
      case 0:
      case 1: {  // HEADERS, maybe split into CONTINUATION frames
        std::string block = header_block(script);
        std::size_t split = block.size() > 2 ? script.byte() % block.size() : block.size();
        bool continued = split < block.size() && split > 0;
        std::uint8_t header_flags = (flags & 0x01) | (continued ? 0 : 0x04);
        append_frame(input, 0x1, header_flags, stream,
                     block.substr(0, split ? split : block.size()));
        if (continued)
          append_frame(input, 0x9, 0x04, stream, block.substr(split));
        if (stream == next_stream)
          next_stream += 2;
        break;
      }
      case 2:
      case 3:  // DATA, maybe END_STREAM
        payload.assign(script.number(20000), 'd');
        append_frame(input, 0x0, flags & 0x01, stream, payload);
        break;
      case 4:  // RST_STREAM
        append_u32(payload, script.byte() % 14);
        append_frame(input, 0x3, 0, stream, payload);
        break;
      case 5:  // WINDOW_UPDATE, on a stream or the connection
        append_u32(payload, script.number(70000) + (script.byte() % 8 == 0 ? 0x7fff0000u : 0));
        append_frame(input, 0x8, 0, flags % 2 == 0 ? 0 : stream, payload);
        break;
      case 6:  // PRIORITY (RFC 7540; deprecated, must be tolerated)
        append_u32(payload, script.number(32));
        payload.push_back(static_cast<char>(script.byte()));
        append_frame(input, 0x2, 0, stream, payload);
        break;
      case 7: {  // SETTINGS: window size, frame size, header table size, push...
        std::uint8_t count = script.byte() % 4;
        for (std::uint8_t i = 0; i < count; ++i) {
          std::uint16_t id = static_cast<std::uint16_t>(1 + script.byte() % 9);
          payload.push_back(static_cast<char>(id >> 8));
          payload.push_back(static_cast<char>(id));
          append_u32(payload, script.number(0xffff) * (script.byte() % 4 + 1));
        }
        append_frame(input, 0x4, flags & 0x01, 0, payload);
        break;
      }
      case 8:  // PING, maybe an ACK
        payload.assign(8, 'p');
        append_frame(input, 0x6, flags & 0x01, 0, payload);
        break;
      case 9:  // GOAWAY from the client
        append_u32(payload, stream);
        append_u32(payload, script.byte() % 14);
        append_frame(input, 0x7, 0, 0, payload);
        break;
      case 10:  // time passes; overdue streams are reset
        now += std::chrono::milliseconds(script.number(8000));
        connection.expire(now);
        break;
      default:  // answers come back
        for (std::int32_t id : pending)
          connection.answer(id, {200, "{}"});
        handed_out = 0;
        pending.clear();
        break;
    }
    // Fed in pieces of the script's choosing.
    std::size_t piece = 1 + std::size_t{script.byte()} % 64 * 64;
    while (!input.empty() && alive) {
      std::size_t n = std::min(piece, input.size());
      alive = connection.receive({reinterpret_cast<const std::uint8_t*>(input.data()), n}, now);
      input.erase(0, n);
      if (connection.buffered_bytes() >
          2 * limits.http2_connection_buffer_bytes + limits.max_header_bytes)
        __builtin_trap();
    }
    output.clear();
    connection.send(output, 1 << 20);
    check_frames(output, unparsed);
  }
  for (std::int32_t id : pending)
    connection.answer(id, {200, "{}"});
  output.clear();
  connection.send(output, 1 << 20);
  check_frames(output, unparsed);
  return 0;
}
