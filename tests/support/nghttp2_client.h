// An HTTP/2 client for tests: an nghttp2 client session (an implementation independent of the
// server's) with one struct per stream recording what came back. The caller moves its bytes:
// in memory, or over a socket.
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace xks::test {

struct ClientStream {
  std::string body_to_send;
  std::size_t sent = 0;
  bool end = true;  // END_STREAM once the body is sent; false: keep the stream open
  int status = 0;
  std::string answer;
  std::uint32_t closed_with = ~0u;
};

class Nghttp2Client {
 public:
  Nghttp2Client() {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(
        callbacks, [](nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                      std::size_t name_length, const std::uint8_t* value, std::size_t value_length,
                      std::uint8_t, void* self) {
          if (std::string_view(reinterpret_cast<const char*>(name), name_length) == ":status") {
            static_cast<Nghttp2Client*>(self)->streams[frame->hd.stream_id].status =
                std::stoi(std::string(reinterpret_cast<const char*>(value), value_length));
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        callbacks, [](nghttp2_session*, std::uint8_t, std::int32_t stream_id,
                      const std::uint8_t* data, std::size_t length, void* self) {
          static_cast<Nghttp2Client*>(self)->streams[stream_id].answer.append(
              reinterpret_cast<const char*>(data), length);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        callbacks, [](nghttp2_session*, std::int32_t stream_id, std::uint32_t error, void* self) {
          static_cast<Nghttp2Client*>(self)->streams[stream_id].closed_with = error;
          return 0;
        });
    nghttp2_session_client_new(&session, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Nghttp2Client() { nghttp2_session_del(session); }

  std::int32_t request(std::string path, std::string body, bool end = true,
                       std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> fields = {
        {":method", "POST"}, {":scheme", "https"}, {":path", path}, {":authority", "h:1"}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    std::vector<nghttp2_nv> nva;
    for (auto& [name, value] : fields) {
      nva.push_back({reinterpret_cast<std::uint8_t*>(name.data()),
                     reinterpret_cast<std::uint8_t*>(value.data()), name.size(), value.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    auto state = std::make_unique<ClientStream>();
    state->body_to_send = std::move(body);
    state->end = end;
    nghttp2_data_provider provider{};
    provider.source.ptr = state.get();
    provider.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buffer,
                                std::size_t length, std::uint32_t* flags,
                                nghttp2_data_source* source, void*) -> ssize_t {
      auto& stream = *static_cast<ClientStream*>(source->ptr);
      std::size_t n = std::min(length, stream.body_to_send.size() - stream.sent);
      std::copy_n(stream.body_to_send.data() + stream.sent, n, buffer);
      stream.sent += n;
      if (stream.sent == stream.body_to_send.size()) {
        if (!stream.end)
          return n == 0 ? ssize_t{NGHTTP2_ERR_DEFERRED} : static_cast<ssize_t>(n);
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      }
      return static_cast<ssize_t>(n);
    };
    // A request without a body ends with its HEADERS frame.
    bool headers_only = end && state->body_to_send.empty();
    std::int32_t id = nghttp2_submit_request(session, nullptr, nva.data(), nva.size(),
                                             headers_only ? nullptr : &provider, nullptr);
    bodies.push_back(std::move(state));
    return id;
  }

  nghttp2_session* session = nullptr;
  std::map<std::int32_t, ClientStream> streams;
  std::vector<std::unique_ptr<ClientStream>> bodies;
};

}  // namespace xks::test
