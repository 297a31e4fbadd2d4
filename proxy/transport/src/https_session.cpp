// HTTP/1.1 over TLS: every read and write bounded by a timeout, every byte by the limits
// (Http1RequestReader), Expect: 100-continue answered, keep-alive and pipelining.
#include "https_session.h"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "http1_request_reader.h"
#include "http2_session.h"
#include "request_dispatch.h"
#include "tls_socket.h"

namespace xks::proxy {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kMaxLingerBytes = 16 * 1024 * 1024;

class HttpsSession : public std::enable_shared_from_this<HttpsSession> {
 public:
  HttpsSession(tcp::socket socket, ListenerState& context)
      : context_(context),
        tls_(std::make_unique<TlsSocket>(std::move(socket), context.tls.load())),
        stream_(*tls_),
        reader_(context.config.limits) {}
  ~HttpsSession() {
    if (counted_as_http1_)
      --context_.metrics.http1_connections;
  }

  void start() {
    auto admission = context_.connections.admit(stream_.peer_ip(), stream_.abort_later());
    if (!admission) {
      context_.metrics.record_connection_refused(TransportMetrics::Listener::kXks,
                                                 admission.error());
      return stream_.close();
    }
    admission_ = std::move(*admission);
    admission_.on_drain([weak = weak_from_this(), executor = stream_.get_executor()] {
      net::post(executor, [weak] {
        if (auto self = weak.lock())
          self->on_drain();
      });
    });
    stream_.expires_after(context_.config.handshake_timeout);
    stream_.async_handshake([self = shared_from_this()](beast::error_code error, std::size_t) {
      if (!error && !self->stream_.peer_certificate_still_valid())
        error = net::error::access_denied;
      self->context_.metrics.record_handshake(!error);
      if (error) {
        self->stream_.expires_after(std::chrono::seconds(1));
        return self->stream_.async_drain([self](beast::error_code) { self->stream_.close(); });
      }
      self->admission_.handshake_done();
      self->handshaken_ = true;
      if (self->stream_.has_peer_certificate())
        self->admission_.prove();  // mTLS: the client certificate was verified
      if (self->stream_.alpn() == "h2") {
        return start_http2_session(std::move(self->tls_), std::move(self->admission_),
                                   self->context_);
      }
      self->counted_as_http1_ = true;
      ++self->context_.metrics.http1_connections;
      self->read_request();
    });
  }

 private:
  // The server is stopping. A connection in its handshake or waiting for its next request stops
  // now; one with a request under way finishes it, answered with Connection: close.
  void on_drain() {
    if (!handshaken_ || (phase_ == Phase::kIdle && !in_flight_))
      stream_.cancel();
  }

  // Read phases, each with its own deadline set once on entry (never per read, so a peer
  // trickling bytes cannot stretch it): idle between requests, then the header, then the body.
  enum class Phase { kIdle, kHeader, kBody };

  void read_request() {
    if (context_.draining)
      return close();
    reader_.next_request();
    continue_sent_ = false;
    if (reader_.has_buffered_bytes()) {
      // A pipelined request: its first bytes are here already.
      enter(Phase::kHeader);
      return on_progress(reader_.parse());
    }
    enter(Phase::kIdle);
    // Waits for the next request without a read buffer: an idle connection holds none.
    stream_.async_wait_input([self = shared_from_this()](beast::error_code error, std::size_t) {
      if (error)
        return self->close();  // end of stream, idle timeout, reset, drain
      self->read();
    });
  }

  // A new connection gets header_timeout, not idle_timeout, to start its first request: a
  // slot is for clients that use it.
  void enter(Phase phase) {
    phase_ = phase;
    stream_.expires_after(phase == Phase::kIdle && answered_ ? context_.config.idle_timeout
                                                             : context_.config.header_timeout);
  }

  void read() {
    stream_.async_read_some(reader_.prepare(), [self = shared_from_this()](beast::error_code error,
                                                                           std::size_t n) {
      if (error == net::error::timed_out && self->phase_ != Phase::kIdle) {
        self->context_.metrics.record_refusal(HttpProtocol::kHttp1, HttpRefusal::kRequestTimeout);
      }
      if (error)
        return self->close();  // end of stream, timeout, reset
      if (self->phase_ == Phase::kIdle)
        self->enter(Phase::kHeader);
      self->on_progress(self->reader_.commit(n));
    });
  }

  void on_progress(Http1RequestReader::Status status) {
    using Status = Http1RequestReader::Status;
    if (status == Status::kComplete)
      return dispatch();
    if (status == Status::kRefused) {
      HttpRefusal reason = reader_.refusal();
      context_.metrics.record_refusal(HttpProtocol::kHttp1, reason);
      linger_ = reason == HttpRefusal::kBodyBytes;
      version_ = reader_.header_done() ? reader_.version() : 11;
      return respond(context_.application.render_refusal(reason, stream_.peer_address()), false);
    }
    if (reader_.header_done() && phase_ == Phase::kHeader)
      enter(Phase::kBody);
    if (reader_.expects_continue() && !continue_sent_) {
      continue_sent_ = true;
      auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                        reader_.version());
      http::async_write(stream_, *interim,
                        [self = shared_from_this(), interim](beast::error_code error, std::size_t) {
                          if (error)
                            return self->close();
                          self->read();
                        });
      return;
    }
    read();
  }

  void dispatch() {
    HttpRequest request = reader_.take_request();
    request.client_subject = stream_.peer_subject();
    request.client_address = stream_.peer_address();
    keep_alive_ = reader_.keep_alive();
    version_ = reader_.version();
    stream_.expires_never();

    in_flight_ = true;
    admission_.hold_request();
    dispatch_request(context_, std::move(request), stream_.get_executor(),
                     [self = shared_from_this()](HttpResponse response) {
                       self->respond(std::move(response), self->keep_alive_);
                     });
  }

  void respond(HttpResponse answer, bool keep_alive) {
    answered_ = true;
    if (answer.authenticated)
      admission_.prove();
    // Evictable again once answered: a peer that stops reading its answers must not keep a
    // slot out of reach by holding writes open.
    if (in_flight_)
      admission_.release_request();
    bool close_after = !keep_alive || context_.draining;
    format_response(answer, close_after);
    stream_.expires_after(context_.config.idle_timeout);
    net::async_write(
        stream_, net::buffer(output_),
        [self = shared_from_this(), close_after](beast::error_code error, std::size_t) {
          if (std::exchange(self->in_flight_, false))
            request_finished(self->context_);
          // Kept for the next answer unless large: an idle connection should hold little.
          if (self->output_.capacity() > kKeptOutputBytes)
            std::string().swap(self->output_);
          if (error)
            return self->close();
          if (self->linger_)
            return self->discard_rest();
          if (close_after)
            return self->close();
          self->read_request();
        });
  }

  // The answer as it goes on the wire (RFC 9112 §4, §6), in one buffer: one TLS record and no
  // serializer. HTTP/1.0 keeps a connection only when told so.
  void format_response(const HttpResponse& answer, bool close_after) {
    const unsigned version = version_ ? version_ : 11;
    output_.clear();
    output_.reserve(128 + answer.body.size());
    output_ += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    output_ += std::to_string(answer.status);
    output_ += ' ';
    output_ += http::obsolete_reason(static_cast<http::status>(answer.status));
    output_ += "\r\nContent-Type: application/json\r\nContent-Length: ";
    output_ += std::to_string(answer.body.size());
    if (close_after && version == 11)
      output_ += "\r\nConnection: close";
    else if (!close_after && version == 10)
      output_ += "\r\nConnection: keep-alive";
    output_ += "\r\n\r\n";
    output_ += answer.body;
  }

  // After refusing an oversized body, keep reading (and dropping) what the client is still
  // sending for a moment, so that a client that writes its whole body before reading sees
  // the refusal instead of a reset connection.
  void discard_rest() {
    if (!scratch_) {
      scratch_ = std::make_unique<std::array<char, 16 * 1024>>();
      stream_.expires_after(kLingerTime);  // once: a trickle cannot stretch it
    }
    stream_.async_read_some(net::buffer(*scratch_),
                            [self = shared_from_this()](beast::error_code error, std::size_t n) {
                              self->discarded_ += n;
                              if (error || self->discarded_ > kMaxLingerBytes)
                                return self->close();
                              self->discard_rest();
                            });
  }

  void close() {
    stream_.expires_after(std::chrono::seconds(1));
    stream_.async_shutdown(
        [self = shared_from_this()](beast::error_code, std::size_t) { self->stream_.close(); });
  }

  ListenerState& context_;
  ConnectionTable::Admission admission_;  // handed to HTTP/2 with the socket
  std::unique_ptr<TlsSocket> tls_;        // handed to HTTP/2 when ALPN chose h2
  TlsSocket& stream_;
  Http1RequestReader reader_;
  Phase phase_ = Phase::kIdle;
  bool continue_sent_ = false;
  bool keep_alive_ = true;
  bool in_flight_ = false;  // counted in requests_in_flight until its answer is written
  bool counted_as_http1_ = false;
  bool answered_ = false;    // a request was answered on this connection
  bool handshaken_ = false;  // the TLS handshake is done (HTTP/2 connections move on)
  bool linger_ = false;      // drop the rest of an oversized body before closing
  std::size_t discarded_ = 0;
  std::unique_ptr<std::array<char, 16 * 1024>> scratch_;  // only while lingering
  static constexpr std::size_t kKeptOutputBytes = 1024;
  std::string output_;  // the answer being written, then kept for the next (if small)
  unsigned version_ = 11;
};

}  // namespace

void start_https_session(tcp::socket socket, ListenerState& context) {
  std::make_shared<HttpsSession>(std::move(socket), context)->start();
}

}  // namespace xks::proxy
