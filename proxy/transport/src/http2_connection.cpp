// HTTP/2 server connection over nghttp2, with every limit enforced before bytes are kept.
#include "http2_connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <new>
#include <optional>
#include <utility>
#include <vector>

namespace xks::proxy {

namespace {

// RFC 9113 §6.5.2: a field's size in a header list is its name and value plus 32.
constexpr std::size_t kFieldOverhead = 32;
constexpr std::size_t kMaxWindow = std::numeric_limits<std::int32_t>::max();
// XKS requests are at most about 20 KB (4300 bytes of plaintext and 8192 of AAD in base64).
constexpr std::size_t kInitialStreamWindow = 32 * 1024;

nghttp2_nv header(std::string_view name, std::string_view value) {
  return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

struct Http2Connection::Callbacks {
  static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame,
                              void* user_data);
  static int on_header(nghttp2_session* session, const nghttp2_frame* frame,
                       const std::uint8_t* name, std::size_t name_length, const std::uint8_t* value,
                       std::size_t value_length, std::uint8_t flags, void* user_data);
  static int on_data_chunk(nghttp2_session* session, std::uint8_t flags, std::int32_t stream_id,
                           const std::uint8_t* data, std::size_t length, void* user_data);
  static int on_frame(nghttp2_session* session, const nghttp2_frame* frame, void* user_data);
  static int on_frame_sent(nghttp2_session* session, const nghttp2_frame* frame, void* user_data);
  static int on_stream_close(nghttp2_session* session, std::int32_t stream_id,
                             std::uint32_t error_code, void* user_data);
};

Http2Connection::Http2Connection(const HttpLimits& limits, Clock::duration phase_timeout,
                                 RequestHandler on_request, RefusalHandler on_refusal,
                                 RefusalRenderer render)
    : limits_(limits),
      phase_timeout_(phase_timeout),
      on_request_(std::move(on_request)),
      on_refusal_(std::move(on_refusal)),
      render_(std::move(render)) {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* option = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&option) != 0)
    throw std::bad_alloc();
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, Callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, Callbacks::on_frame);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, Callbacks::on_frame_sent);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, Callbacks::on_stream_close);
  // Windows are reopened by release(), only for bytes no longer held.
  nghttp2_option_set_no_auto_window_update(option, 1);
  int created = nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_option_del(option);
  if (created != 0)
    throw std::bad_alloc();

  // Enough for a typical XKS body at once; admit() opens an admitted stream's window to its
  // whole reservation, so a stream refused for the budget has sent little that is thrown away.
  auto stream_window = static_cast<std::uint32_t>(initial_stream_window());
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.http2_max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(limits_.max_header_bytes)},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window},
      // No RFC 7540 priority tree to build for the peer (RFC 9113 §5.3.2).
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  // Streams are admitted against the budget with their whole body reserved, so the window only
  // has to let admitted bodies through: nghttp2 reopens it once released bytes reach half of
  // it, and twice the budget guarantees that an admitted stream is never stalled by bytes
  // already released but not yet announced.
  nghttp2_session_set_local_window_size(
      session_, NGHTTP2_FLAG_NONE, 0,
      static_cast<std::int32_t>(std::min(2 * limits_.http2_connection_buffer_bytes, kMaxWindow)));
}

Http2Connection::~Http2Connection() {
  nghttp2_session_del(session_);
}

bool Http2Connection::receive(std::span<const std::uint8_t> bytes, Clock::time_point now) {
  now_ = now;
  auto result = nghttp2_session_mem_recv(session_, bytes.data(), bytes.size());
  if (reset_flood_) {
    on_refusal_(HttpRefusal::kResetFlood);
    goaway_counted_ = true;
    nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
    return false;
  }
  if (result >= 0)
    return true;
  // A bad preface, a flood of frames to answer, endless CONTINUATION frames: nothing to
  // recover, but the peer is told why before the connection closes.
  on_refusal_(HttpRefusal::kMalformed);
  goaway_counted_ = true;
  bool flood = result == NGHTTP2_ERR_FLOODED || result == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
  nghttp2_session_terminate_session(session_,
                                    flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
  return false;
}

void Http2Connection::send(std::string& out, std::size_t max_bytes) {
  const std::uint8_t* data = nullptr;
  while (out.size() < max_bytes) {
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0)
      break;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
}

std::optional<Http2Connection::Clock::time_point> Http2Connection::next_due() const {
  std::optional<Clock::time_point> earliest;
  for (const auto& [id, stream] : streams_) {
    if (receiving(stream) && (!earliest || stream.due < *earliest))
      earliest = stream.due;
  }
  return earliest;
}

std::size_t Http2Connection::expire(Clock::time_point now) {
  std::vector<std::int32_t> overdue;
  for (const auto& [id, stream] : streams_) {
    if (receiving(stream) && stream.due <= now)
      overdue.push_back(id);
  }
  for (std::int32_t id : overdue) {
    on_refusal_(HttpRefusal::kRequestTimeout);
    drop(id, NGHTTP2_CANCEL);
  }
  return overdue.size();
}

bool Http2Connection::wants_read() const {
  return nghttp2_session_want_read(session_) != 0;
}

bool Http2Connection::wants_write() const {
  return nghttp2_session_want_write(session_) != 0;
}

void Http2Connection::go_away() {
  if (std::exchange(going_away_, true))
    return;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

void Http2Connection::answer(std::int32_t stream_id, HttpResponse response) {
  auto found = streams_.find(stream_id);
  if (found == streams_.end())
    return;
  Stream& stream = found->second;
  stream.at_handler = false;
  --at_handler_;
  release(stream_id, stream);  // the request's memory is gone with its answer
  if (stream.closed) {
    streams_.erase(found);  // the peer reset the stream meanwhile
    return;
  }
  submit_response(stream_id, stream, std::move(response));
}

int Http2Connection::Callbacks::on_begin_headers(nghttp2_session* session,
                                                 const nghttp2_frame* frame, void* user_data) {
  auto& connection = *static_cast<Http2Connection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  // Streams reset while at the handler no longer count as open for nghttp2: without this cap
  // a peer could keep starting and resetting requests to queue unbounded HSM work.
  std::optional<HttpRefusal> refusal;
  if (connection.buffered_ >= connection.limits_.http2_connection_buffer_bytes)
    refusal = HttpRefusal::kConnectionBufferBytes;
  else if (connection.at_handler_ >= connection.limits_.http2_max_concurrent_streams)
    refusal = HttpRefusal::kStreamsInFlight;
  if (refusal) {
    connection.on_refusal_(*refusal);
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_REFUSED_STREAM);
    return 0;  // no entry: its fields and data are dropped
  }
  connection.streams_.try_emplace(frame->hd.stream_id).first->second.due =
      connection.now_ + connection.phase_timeout_;
  return 0;
}

int Http2Connection::Callbacks::on_header(nghttp2_session* session, const nghttp2_frame* frame,
                                          const std::uint8_t* name, std::size_t name_length,
                                          const std::uint8_t* value, std::size_t value_length,
                                          std::uint8_t, void* user_data) {
  auto& connection = *static_cast<Http2Connection*>(user_data);
  std::int32_t stream_id = frame->hd.stream_id;
  // nghttp2 checks every decoded field, and one HPACK byte can name a 4 KiB table entry: for a
  // stream we will not serve, stop that work (nghttp2 then skips the rest of the block; the
  // RST_STREAM we queued stands, nghttp2 adds none of its own).
  auto found = connection.streams_.find(stream_id);
  if (found == connection.streams_.end())
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  Stream& stream = found->second;
  std::size_t size = name_length + value_length + kFieldOverhead;
  stream.header_list_bytes += size;  // request headers and trailers together
  if (stream.header_list_bytes > 2 * connection.limits_.max_header_bytes) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_ENHANCE_YOUR_CALM);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (stream.refused)
    return 0;
  if (stream.header_list_bytes > connection.limits_.max_header_bytes) {
    connection.refuse(stream_id, stream, HttpRefusal::kHeaderBytes);
    return 0;
  }
  // Trailers are not part of the request (RFC 9110 §6.5.1): counted, not kept.
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  if (connection.buffered_ + size > connection.limits_.http2_connection_buffer_bytes) {
    connection.on_refusal_(HttpRefusal::kConnectionBufferBytes);
    connection.drop(stream_id, NGHTTP2_REFUSED_STREAM);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  stream.held += size;
  connection.buffered_ += size;
  HttpRequest& request = stream.request;
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

int Http2Connection::Callbacks::on_data_chunk(nghttp2_session* session, std::uint8_t,
                                              std::int32_t stream_id, const std::uint8_t* data,
                                              std::size_t length, void* user_data) {
  auto& connection = *static_cast<Http2Connection*>(user_data);
  auto found = connection.streams_.find(stream_id);
  if (found == connection.streams_.end() || found->second.refused) {
    nghttp2_session_consume(session, stream_id, length);  // dropped at once
    return 0;
  }
  Stream& stream = found->second;
  // The reservation is the declared content-length, or max_body_bytes when none was declared.
  if (stream.request.body.size() + length > stream.reserved) {
    connection.refuse(stream_id, stream, HttpRefusal::kBodyBytes);
    nghttp2_session_consume(session, stream_id, length);
    return 0;
  }
  stream.request.body.append(reinterpret_cast<const char*>(data), length);
  stream.body_window += length;
  return 0;
}

int Http2Connection::Callbacks::on_frame(nghttp2_session*, const nghttp2_frame* frame,
                                         void* user_data) {
  auto& connection = *static_cast<Http2Connection*>(user_data);
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    if (connection.now_ - connection.resets_since_ >= std::chrono::seconds(1)) {
      connection.resets_since_ = connection.now_;
      connection.resets_ = 0;
    }
    if (++connection.resets_ > connection.limits_.http2_max_resets_per_second) {
      connection.reset_flood_ = true;
      return NGHTTP2_ERR_CALLBACK_FAILURE;  // receive() ends the connection
    }
    return 0;
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
    return 0;
  std::int32_t stream_id = frame->hd.stream_id;
  auto found = connection.streams_.find(stream_id);
  if (found == connection.streams_.end())
    return 0;
  Stream& stream = found->second;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    stream.headers_done = true;
    stream.due = connection.now_ + connection.phase_timeout_;  // now for its body
    if (!stream.refused && !connection.admit(stream_id, stream, frame->hd.flags))
      return 0;  // refused for the budget: its entry is gone
  }
  if (stream.refused) {
    if (stream.status.empty())  // refused mid-header-block: answered now the block has ended
      connection.submit_response(stream_id, stream, std::move(stream.refusal));
    return 0;
  }
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    // Checked again here: requests reset while at the handler free nghttp2's stream slots.
    if (connection.at_handler_ >= connection.limits_.http2_max_concurrent_streams) {
      connection.on_refusal_(HttpRefusal::kStreamsInFlight);
      connection.drop(stream_id, NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    // The body is whole: give back what its reservation did not use.
    std::size_t unused = stream.reserved - stream.request.body.size();
    stream.reserved -= unused;
    stream.held -= unused;
    connection.buffered_ -= unused;
    stream.at_handler = true;
    ++connection.at_handler_;
    connection.on_request_(stream_id, std::move(stream.request));
  }
  return 0;
}

bool Http2Connection::admit(std::int32_t stream_id, Stream& stream, std::uint8_t flags) {
  std::optional<std::size_t> declared;
  for (const auto& [name, value] : stream.request.headers) {
    if (name != "content-length")
      continue;
    std::size_t length = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (error == std::errc() && end == value.data() + value.size())
      declared = length;
  }
  if (declared && *declared > limits_.max_body_bytes) {
    refuse(stream_id, stream, HttpRefusal::kBodyBytes);
    return true;
  }
  std::size_t body =
      (flags & NGHTTP2_FLAG_END_STREAM) != 0 ? 0 : declared.value_or(limits_.max_body_bytes);
  if (buffered_ + body > limits_.http2_connection_buffer_bytes) {
    on_refusal_(HttpRefusal::kConnectionBufferBytes);
    drop(stream_id, NGHTTP2_REFUSED_STREAM);
    return false;
  }
  stream.reserved = body;
  stream.held += body;
  buffered_ += body;
  // The stream may now send its whole body (one byte more, to see an oversized one). An
  // increment, not an absolute size: it stays right when the peer acknowledges our SETTINGS
  // (and so its initial window) only after this.
  if (body + 1 > initial_stream_window()) {
    nghttp2_submit_window_update(session_, NGHTTP2_FLAG_NONE, stream_id,
                                 static_cast<std::int32_t>(body + 1 - initial_stream_window()));
  }
  return true;
}

int Http2Connection::Callbacks::on_frame_sent(nghttp2_session*, const nghttp2_frame* frame,
                                              void* user_data) {
  auto& connection = *static_cast<Http2Connection*>(user_data);
  // nghttp2 ends streams and connections that break the protocol (bad headers, content-length
  // mismatch, flow-control violations, floods); our own refusals are counted where made.
  bool protocol_error =
      (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
       !connection.goaway_counted_) ||
      (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR &&
       frame->rst_stream.error_code != NGHTTP2_REFUSED_STREAM &&
       frame->rst_stream.error_code != NGHTTP2_CANCEL);
  if (protocol_error)
    connection.on_refusal_(HttpRefusal::kMalformed);
  return 0;
}

int Http2Connection::Callbacks::on_stream_close(nghttp2_session*, std::int32_t stream_id,
                                                std::uint32_t, void* user_data) {
  auto& connection = *static_cast<Http2Connection*>(user_data);
  auto found = connection.streams_.find(stream_id);
  if (found == connection.streams_.end())
    return 0;
  if (found->second.at_handler) {
    found->second.closed = true;  // kept, and counted, until its answer comes back
    return 0;
  }
  connection.release(stream_id, found->second);
  connection.streams_.erase(found);
  return 0;
}

void Http2Connection::refuse(std::int32_t stream_id, Stream& stream, HttpRefusal reason) {
  on_refusal_(reason);
  release(stream_id, stream);
  stream.refused = true;
  stream.refusal = render_(reason);
  if (stream.headers_done)
    submit_response(stream_id, stream, std::move(stream.refusal));
}

void Http2Connection::submit_response(std::int32_t stream_id, Stream& stream,
                                      HttpResponse response) {
  stream.status = std::to_string(response.status);
  stream.response_body = std::move(response.body);
  stream.content_length = std::to_string(stream.response_body.size());
  const nghttp2_nv headers[] = {header(":status", stream.status),
                                header("content-type", "application/json"),
                                header("content-length", stream.content_length)};
  nghttp2_data_provider body{};
  body.source.ptr = &stream;
  body.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buffer, std::size_t length,
                          std::uint32_t* flags, nghttp2_data_source* source, void*) -> ssize_t {
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

void Http2Connection::drop(std::int32_t stream_id, std::uint32_t error_code) {
  auto found = streams_.find(stream_id);
  if (found != streams_.end()) {
    release(stream_id, found->second);
    streams_.erase(found);
  }
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
}

std::size_t Http2Connection::initial_stream_window() const {
  return std::min(kInitialStreamWindow, limits_.max_body_bytes + 1);
}

void Http2Connection::release(std::int32_t stream_id, Stream& stream) {
  buffered_ -= stream.held;
  stream.held = 0;
  stream.request = {};
  if (stream.body_window > 0) {
    if (nghttp2_session_find_stream(session_, stream_id) != nullptr)
      nghttp2_session_consume(session_, stream_id, stream.body_window);
    else
      nghttp2_session_consume_connection(session_, stream.body_window);
    stream.body_window = 0;
  }
}

}  // namespace xks::proxy
