// An HTTP/2 connection: one nghttp2 client session, several streams in flight.
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <map>

#include "connection.h"

namespace xks::load {

namespace {

using net::use_awaitable;

// One nghttp2 client session; each exchange is a stream, awaited on a timer (that never
// expires) which the session's callbacks, or the watchdog at the stream's deadline, cancel.
class Http2Connection final : public Connection,
                              public std::enable_shared_from_this<Http2Connection> {
 public:
  Http2Connection(const net::any_io_executor& executor, const RunContext& run)
      : Connection(executor, run) {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &Http2Connection::on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Http2Connection::on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
                                                           &Http2Connection::on_stream_close);
    nghttp2_session_client_new(&session_, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Http2Connection() override { nghttp2_session_del(session_); }

  // After open(): starts reading and sends the connection preface.
  void started() override {
    net::co_spawn(stream_.get_executor(), read_loop(shared_from_this()), net::detached);
    flush();
  }

  awaitable<Answer> exchange(const PreparedRequest& request,
                             const RequestFactory& factory) override {
    if (failed_)
      throw TransportFailure(failure_);
    net::steady_timer wake(stream_.get_executor(), Clock::time_point::max());
    Pending pending{.wake = &wake, .body = request.body, .deadline = Clock::now() + timeout_};
    std::string length = std::to_string(request.body.size());
    auto header = [](std::string_view name, std::string_view value) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                        value.size(), NGHTTP2_NV_FLAG_NONE};
    };
    const nghttp2_nv headers[] = {header(":method", "POST"),
                                  header(":scheme", "https"),
                                  header(":authority", factory.authority()),
                                  header(":path", request.path),
                                  header("x-amz-date", request.amz_date),
                                  header("authorization", request.authorization),
                                  header("content-type", "application/json"),
                                  header("content-length", length)};
    nghttp2_data_provider body{};
    body.read_callback = &Http2Connection::read_body;
    int32_t id =
        nghttp2_submit_request(session_, nullptr, headers, std::size(headers), &body, nullptr);
    if (id < 0)
      throw TransportFailure(std::string("transport: h2: ") + nghttp2_strerror(id));
    streams_[id] = &pending;
    flush();
    co_await wake.async_wait(net::as_tuple(use_awaitable));
    if (!pending.done) {
      streams_.erase(id);
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      flush();
      throw TransportFailure("transport: timeout");
    }
    if (!pending.failure.empty())
      throw TransportFailure(pending.failure);
    co_return std::move(pending.answer);
  }

  bool usable() const override { return !failed_; }

  void close() override {
    if (!failed_)
      fail_all("transport: closed");
  }

  void expire(Clock::time_point now) override {
    Connection::expire(now);
    for (auto& [id, pending] : streams_) {
      if (now >= pending->deadline)
        pending->wake->cancel();  // not done: the exchange resets the stream
    }
  }

 private:
  struct Pending {
    net::steady_timer* wake = nullptr;
    std::string_view body;
    Clock::time_point deadline;
    std::size_t body_sent = 0;
    Answer answer{};
    bool done = false;
    std::string failure{};
  };

  Pending* pending(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : it->second;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                       void* user_data) {
    auto* self = static_cast<Http2Connection*>(user_data);
    Pending* pending = self->pending(frame->hd.stream_id);
    std::string_view header_name(reinterpret_cast<const char*>(name), name_length);
    if (pending && header_name == ":status") {
      std::string_view text(reinterpret_cast<const char*>(value), value_length);
      pending->answer.status = 0;
      for (char digit : text)
        pending->answer.status = pending->answer.status * 10 + static_cast<unsigned>(digit - '0');
    }
    return 0;
  }

  static int on_data(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                     size_t length, void* user_data) {
    auto* self = static_cast<Http2Connection*>(user_data);
    if (Pending* pending = self->pending(stream_id)) {
      if (pending->answer.body.size() + length > kMaxAnswerBytes)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      pending->answer.body.append(reinterpret_cast<const char*>(data), length);
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data) {
    auto* self = static_cast<Http2Connection*>(user_data);
    auto it = self->streams_.find(stream_id);
    if (it == self->streams_.end())
      return 0;
    Pending* pending = it->second;
    self->streams_.erase(it);
    pending->done = true;
    if (error_code != NGHTTP2_NO_ERROR || pending->answer.status == 0) {
      pending->failure =
          std::string("transport: h2 stream reset: ") + nghttp2_http2_strerror(error_code);
    }
    pending->wake->cancel();
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buffer, size_t length,
                           uint32_t* flags, nghttp2_data_source*, void* user_data) {
    auto* self = static_cast<Http2Connection*>(user_data);
    Pending* pending = self->pending(stream_id);
    if (!pending)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    std::size_t chunk = std::min(length, pending->body.size() - pending->body_sent);
    std::copy_n(pending->body.data() + pending->body_sent, chunk, buffer);
    pending->body_sent += chunk;
    if (pending->body_sent == pending->body.size())
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(chunk);
  }

  static awaitable<void> read_loop(std::shared_ptr<Http2Connection> self) {
    std::array<uint8_t, 16384> buffer;
    while (!self->failed_) {
      auto [error, length] =
          co_await self->stream_.async_read_some(net::buffer(buffer), net::as_tuple(use_awaitable));
      if (self->failed_)
        break;
      if (error) {
        self->fail_all(self->failure(error).what());
        break;
      }
      ssize_t consumed = nghttp2_session_mem_recv(self->session_, buffer.data(), length);
      if (consumed < 0) {
        self->fail_all(std::string("transport: h2: ") +
                       nghttp2_strerror(static_cast<int>(consumed)));
        break;
      }
      self->flush();
      if (!nghttp2_session_want_read(self->session_) &&
          !nghttp2_session_want_write(self->session_)) {
        self->fail_all("transport: h2 session ended (GOAWAY)");
      }
    }
  }

  // Writes whatever the session has queued; one writer at a time.
  void flush() {
    if (writing_ || failed_)
      return;
    writing_ = true;
    net::co_spawn(stream_.get_executor(), write_loop(shared_from_this()), net::detached);
  }

  static awaitable<void> write_loop(std::shared_ptr<Http2Connection> self) {
    while (!self->failed_) {
      self->out_.clear();
      for (;;) {
        const uint8_t* data = nullptr;
        ssize_t length = nghttp2_session_mem_send(self->session_, &data);
        if (length < 0) {
          self->fail_all(std::string("transport: h2: ") +
                         nghttp2_strerror(static_cast<int>(length)));
          break;
        }
        if (length == 0)
          break;
        self->out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(length));
      }
      if (self->out_.empty() || self->failed_)
        break;
      auto [error, written] = co_await net::async_write(self->stream_, net::buffer(self->out_),
                                                        net::as_tuple(use_awaitable));
      if (error && !self->failed_)
        self->fail_all(self->failure(error).what());
    }
    self->writing_ = false;
  }

  void fail_all(std::string why) {
    failed_ = true;
    failure_ = std::move(why);
    for (auto& [id, pending] : streams_) {
      pending->done = true;
      pending->failure = failure_;
      pending->wake->cancel();
    }
    streams_.clear();
    Connection::close();
  }

  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Pending*> streams_;
  std::string out_;
  bool writing_ = false;
  bool failed_ = false;
  std::string failure_;
};

}  // namespace

std::shared_ptr<Connection> make_http2_connection(const net::any_io_executor& executor,
                                                  const RunContext& run) {
  return std::make_shared<Http2Connection>(executor, run);
}

}  // namespace xks::load
