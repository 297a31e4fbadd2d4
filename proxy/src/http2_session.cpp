// HTTP/2 with nghttp2: the session is a state machine fed with nghttp2_session_mem_recv and
// drained with nghttp2_session_mem_send; per-stream state lives in one small struct.
#include "http2_session.h"

#include <nghttp2/nghttp2.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <map>
#include <memory>
#include <string>

#include "request_dispatch.h"
#include "xks/proxy/xks_error.h"

namespace xks::proxy {

namespace {

using error_code = boost::system::error_code;
namespace net = boost::asio;

constexpr std::uint32_t kMaxConcurrentStreams = 128;
constexpr std::uint32_t kMaxHeaderListBytes = 16 * 1024;

struct Stream {
  HttpRequest request;
  bool refused = false;       // answered early (body too large); the rest is dropped
  bool in_flight = false;     // at the HSM, counted in requests_in_flight
  std::string response_body;  // what the data provider sends
  std::size_t sent = 0;
  std::string status;
  std::string content_length;
};

nghttp2_nv header(std::string_view name, std::string_view value) {
  return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

class Http2Session : public std::enable_shared_from_this<Http2Session> {
 public:
  Http2Session(std::unique_ptr<TlsSocket> stream, SessionContext& context)
      : context_(context), tls_(std::move(stream)), stream_(*tls_) {
    ++context_.open_connections;
    ++context_.runtime.metrics().http2_connections;
  }

  ~Http2Session() {
    for (auto& [id, state] : streams_) {
      if (state.in_flight)
        request_finished(context_);
    }
    if (session_ != nullptr)
      nghttp2_session_del(session_);
    --context_.runtime.metrics().http2_connections;
    --context_.open_connections;
  }

  void start() {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
    int created = nghttp2_session_server_new(&session_, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
    if (created != 0)
      return;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, kMaxHeaderListBytes},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
         static_cast<std::uint32_t>(context_.config.max_body_bytes)},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    flush();
    read();
  }

 private:
  static Http2Session& self(void* user_data) { return *static_cast<Http2Session*>(user_data); }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      self(user_data).streams_[frame->hd.stream_id];
    }
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t name_length, const std::uint8_t* value, std::size_t value_length,
                       std::uint8_t, void* user_data) {
    auto found = self(user_data).streams_.find(frame->hd.stream_id);
    if (found == self(user_data).streams_.end())
      return 0;
    HttpRequest& request = found->second.request;
    std::string_view key(reinterpret_cast<const char*>(name), name_length);
    std::string text(reinterpret_cast<const char*>(value), value_length);
    if (key == ":method") {
      request.method = std::move(text);
    } else if (key == ":path") {
      request.target = std::move(text);
    } else if (key == ":authority") {
      request.headers.emplace_back("host", std::move(text));  // SigV4 signs it as host
    } else if (!key.starts_with(':')) {
      request.headers.emplace_back(std::string(key), std::move(text));
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id,
                           const std::uint8_t* data, std::size_t length, void* user_data) {
    Http2Session& session = self(user_data);
    auto found = session.streams_.find(stream_id);
    if (found == session.streams_.end() || found->second.refused)
      return 0;
    Stream& stream = found->second;
    if (stream.request.body.size() + length > session.context_.config.max_body_bytes) {
      stream.refused = true;
      session.submit(stream_id,
                     {413, error_body(XksError::kPayloadTooLarge, "request body too large")});
      return 0;
    }
    stream.request.body.append(reinterpret_cast<const char*>(data), length);
    return 0;
  }

  static int on_frame(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    bool request_complete = (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
                            (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (request_complete)
      self(user_data).dispatch(frame->hd.stream_id);
    return 0;
  }

  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t,
                             void* user_data) {
    Http2Session& session = self(user_data);
    auto found = session.streams_.find(stream_id);
    if (found == session.streams_.end())
      return 0;
    // A stream reset while at the HSM keeps its entry until the answer comes back.
    if (!found->second.in_flight)
      session.streams_.erase(found);
    return 0;
  }

  void dispatch(std::int32_t stream_id) {
    auto found = streams_.find(stream_id);
    if (found == streams_.end() || found->second.refused)
      return;
    found->second.in_flight = true;
    found->second.request.client_subject = stream_.peer_subject();
    dispatch_request(context_, std::move(found->second.request), stream_.get_executor(),
                     [self = shared_from_this(), stream_id](HttpResponse response) {
                       self->on_answer(stream_id, std::move(response));
                     });
  }

  void on_answer(std::int32_t stream_id, HttpResponse response) {
    auto found = streams_.find(stream_id);
    if (found == streams_.end())
      return;
    found->second.in_flight = false;
    request_finished(context_);
    if (nghttp2_session_find_stream(session_, stream_id) == nullptr) {
      streams_.erase(found);  // the client reset the stream meanwhile
      return;
    }
    submit(stream_id, std::move(response));
    flush();
  }

  void submit(std::int32_t stream_id, HttpResponse response) {
    Stream& stream = streams_[stream_id];
    stream.status = std::to_string(response.status);
    stream.response_body = std::move(response.body);
    stream.content_length = std::to_string(stream.response_body.size());
    const nghttp2_nv headers[] = {header(":status", stream.status),
                                  header("content-type", "application/json"),
                                  header("content-length", stream.content_length)};
    nghttp2_data_provider body{};
    body.source.ptr = &stream;
    body.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buffer,
                            std::size_t length, std::uint32_t* flags, nghttp2_data_source* source,
                            void*) -> ssize_t {
      auto& state = *static_cast<Stream*>(source->ptr);
      std::size_t count = std::min(length, state.response_body.size() - state.sent);
      std::copy_n(state.response_body.data() + state.sent, count, buffer);
      state.sent += count;
      if (state.sent == state.response_body.size())
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(count);
    };
    nghttp2_submit_response(session_, stream_id, headers, std::size(headers), &body);
  }

  void read() {
    if (context_.draining && !goaway_sent_) {
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                            nullptr, 0);
      goaway_sent_ = true;
      flush();
    }
    stream_.expires_after(context_.config.idle_timeout);
    stream_.async_read_some(
        net::buffer(input_), [self = shared_from_this()](error_code error, std::size_t n) {
          if (error)
            return;
          ssize_t used = nghttp2_session_mem_recv(self->session_, self->input_.data(), n);
          if (used < 0)
            return;
          self->flush();
          if (nghttp2_session_want_read(self->session_) != 0 ||
              nghttp2_session_want_write(self->session_) != 0) {
            self->read();
          }
        });
  }

  // Writes whatever nghttp2 has queued; one write at a time.
  void flush() {
    if (writing_)
      return;
    output_.clear();
    const std::uint8_t* data = nullptr;
    for (ssize_t n; (n = nghttp2_session_mem_send(session_, &data)) > 0;) {
      output_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (output_.empty())
      return;
    writing_ = true;
    net::async_write(stream_, net::buffer(output_),
                     [self = shared_from_this()](error_code error, std::size_t) {
                       self->writing_ = false;
                       if (!error)
                         self->flush();
                     });
  }

  SessionContext& context_;
  std::unique_ptr<TlsSocket> tls_;
  TlsSocket& stream_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, Stream> streams_;
  std::array<std::uint8_t, 16 * 1024> input_{};
  std::string output_;
  bool writing_ = false;
  bool goaway_sent_ = false;
};

}  // namespace

void start_http2_session(std::unique_ptr<TlsSocket> stream, SessionContext& context) {
  std::make_shared<Http2Session>(std::move(stream), context)->start();
}

}  // namespace xks::proxy
