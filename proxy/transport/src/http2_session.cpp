// HTTP/2 over TLS: shuttles bytes between the socket and the connection's state machine
// (Http2Connection), hands complete requests to the Application and writes their answers.
// Constant stack and bounded work per turn: one read of at most 16 KiB is processed per
// completion, and while a write is pending (the peer is slow to read) nothing more is read.
// Time bounds: overdue half-sent streams are reset by a timer at the state machine's next due
// time; the connection itself closes (after GOAWAY) once it has had no request for
// idle_timeout (header_timeout before its first), whatever other frames the peer sends.
#include "http2_session.h"

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "http2_connection.h"
#include "request_dispatch.h"

namespace xks::proxy {

namespace {

using error_code = boost::system::error_code;
namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

// Output taken from the state machine per write: enough for many answers in one TLS write.
constexpr std::size_t kMaxWriteBatch = 64 * 1024;

class Http2Session : public std::enable_shared_from_this<Http2Session> {
 public:
  Http2Session(std::unique_ptr<TlsSocket> stream, ConnectionTable::Admission admission,
               ListenerState& context)
      : context_(context),
        admission_(std::move(admission)),
        tls_(std::move(stream)),
        stream_(*tls_),
        due_timer_(stream_.get_executor()) {
    ++context_.metrics.http2_connections;
  }

  ~Http2Session() {
    for (; in_flight_ > 0; --in_flight_)
      request_finished(context_);
    --context_.metrics.http2_connections;
  }

  void start() {
    admission_.on_drain(later(&Http2Session::on_drain));
    admission_.on_evict(later(&Http2Session::on_evicted));
    connection_.emplace(
        context_.config.limits, context_.config.header_timeout,
        [this](std::int32_t stream_id, HttpRequest request) {
          // Runs inside receive(): the session is alive (read() holds it).
          dispatch(stream_id, std::move(request));
        },
        [this](HttpRefusal reason) {
          context_.metrics.record_refusal(HttpProtocol::kHttp2, reason);
        },
        [this](HttpRefusal reason) {
          return context_.application.render_refusal(reason, stream_.peer_address());
        });
    flush();
    read();
  }

 private:
  void dispatch(std::int32_t stream_id, HttpRequest request) {
    ++in_flight_;
    quiet_until_ = Clock::now() + context_.config.idle_timeout;
    admission_.hold_request();
    request.client_subject = stream_.peer_subject();
    request.client_address = stream_.peer_address();
    request.multiplexed = true;
    dispatch_request(context_, std::move(request), stream_.get_executor(),
                     [self = shared_from_this(), stream_id](HttpResponse response) {
                       self->on_answer(stream_id, std::move(response));
                     });
  }

  // For another thread: runs `member` on this connection's thread while the session lives.
  std::function<void()> later(void (Http2Session::*member)()) {
    return [weak = weak_from_this(), executor = stream_.get_executor(), member] {
      net::post(executor, [weak, member] {
        if (auto self = weak.lock())
          (self.get()->*member)();
      });
    };
  }

  // The server is stopping, or this connection was evicted to make room: GOAWAY now (the
  // streams it names still finish), and close once nothing is in flight.
  bool leaving() const { return context_.draining || evicted_; }
  void on_drain() {
    if (closed_)
      return;
    connection_->go_away();
    flush();  // once written, and nothing in flight, the read is ended: see flush()
  }
  void on_evicted() {
    evicted_ = true;  // its slot is given up already: the goodbye gets one second, see flush()
    on_drain();
  }

  void on_answer(std::int32_t stream_id, HttpResponse response) {
    --in_flight_;
    quiet_until_ = Clock::now() + context_.config.idle_timeout;
    if (response.authenticated)
      admission_.prove();
    admission_.release_request();
    request_finished(context_);
    connection_->answer(stream_id, std::move(response));
    flush();
  }

  void read() {
    if (reading_ || writing_ || closing_)
      return;
    if (leaving() && !connection_->going_away()) {
      connection_->go_away();
      return flush();
    }
    if (!connection_->wants_read())
      return finish();
    if (in_flight_ == 0 && Clock::now() >= quiet_until_)
      return go_away_and_close();  // a peer that keeps sending frames cannot outrun it
    reading_ = true;
    // Not extended by frames that are not requests (PING, SETTINGS, WINDOW_UPDATE...).
    stream_.expires_after(quiet_until_ - Clock::now());
    stream_.async_read_some(
        net::buffer(input_), [self = shared_from_this()](error_code error, std::size_t n) {
          self->reading_ = false;
          if ((error == net::error::timed_out || self->leaving()) && self->in_flight_ == 0)
            return self->go_away_and_close();  // idle or leaving: say goodbye first
          if (error)
            return self->close();
          if (!self->connection_->receive({self->input_.data(), n}))
            self->closing_ = true;  // still write the GOAWAY nghttp2 queued, then close
          self->arm_due_timer();
          self->flush();
          self->read();
        });
  }

  // Resets half-sent streams once they are overdue (Http2Connection::expire).
  void arm_due_timer() {
    std::optional<Clock::time_point> due = connection_->next_due();
    if (!due || closed_ || (timer_at_ && *timer_at_ <= *due))
      return;
    timer_at_ = *due;
    due_timer_.expires_at(*due);
    due_timer_.async_wait([self = shared_from_this()](error_code error) {
      if (error)
        return;  // cancelled: closed, or armed again for an earlier time
      self->timer_at_.reset();
      if (self->closed_)
        return;
      self->connection_->expire(Clock::now());
      self->arm_due_timer();
      self->flush();
    });
  }

  void go_away_and_close() {
    // Streams still receiving will not finish: reset them (CANCEL) before the goodbye.
    connection_->expire(Clock::time_point::max());
    connection_->go_away();
    closing_ = true;
    flush();
  }

  // Writes a batch of what the state machine has queued; one write at a time. Reading
  // resumes only once the batch is written, so a peer that does not read cannot make us queue.
  void flush() {
    if (writing_)
      return;
    output_.clear();
    connection_->send(output_, kMaxWriteBatch);
    if (output_.empty()) {
      if (closing_)
        return close();
      // Draining and all answered (and written): end the pending read, whose handler says
      // goodbye and closes. Only a read is pending here, never a write.
      if (leaving() && in_flight_ == 0 && reading_)
        return stream_.cancel();
      return read();
    }
    writing_ = true;
    // A peer that stops reading holds the answers: the write gets idle_timeout (a goodbye
    // before closing, or on an evicted connection, one second).
    stream_.expires_after(closing_ || evicted_ ? std::chrono::seconds(1)
                                               : context_.config.idle_timeout);
    net::async_write(stream_, net::buffer(output_),
                     [self = shared_from_this()](error_code error, std::size_t) {
                       self->writing_ = false;
                       if (error)
                         return self->close();
                       self->flush();
                     });
  }

  // Both sides are done (GOAWAY exchanged, or the peer's): close once nothing is in flight.
  void finish() {
    if (in_flight_ == 0 && !connection_->wants_write())
      close();
  }

  void close() {
    if (std::exchange(closed_, true))
      return;
    closing_ = true;
    due_timer_.cancel();
    stream_.expires_after(std::chrono::seconds(1));
    stream_.async_shutdown(
        [self = shared_from_this()](error_code, std::size_t) { self->stream_.close(); });
  }

  ListenerState& context_;
  ConnectionTable::Admission admission_;
  std::unique_ptr<TlsSocket> tls_;
  TlsSocket& stream_;
  std::optional<Http2Connection> connection_;
  std::array<std::uint8_t, 16 * 1024> input_{};
  std::string output_;
  std::size_t in_flight_ = 0;  // requests at the HSM, counted in requests_in_flight
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool evicted_ = false;
  // Without a request (dispatched or answered) until then, the connection closes: a new one
  // has header_timeout for its first whole request, then idle_timeout after each.
  Clock::time_point quiet_until_ = Clock::now() + context_.config.header_timeout;
  net::steady_timer due_timer_;
  std::optional<Clock::time_point> timer_at_;  // when due_timer_ fires, if armed
};

}  // namespace

void start_http2_session(std::unique_ptr<TlsSocket> stream, ConnectionTable::Admission admission,
                         ListenerState& context) {
  std::make_shared<Http2Session>(std::move(stream), std::move(admission), context)->start();
}

}  // namespace xks::proxy
