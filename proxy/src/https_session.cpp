// HTTP/1.1 over TLS with Boost.Beast: every read and write bounded by a timeout, bodies capped
// from Content-Length and while reading, Expect: 100-continue answered, keep-alive.
#include "https_session.h"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "http2_session.h"
#include "request_dispatch.h"
#include "tls_socket.h"
#include "xks/proxy/xks_error.h"

namespace xks::proxy {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kMaxLingerBytes = 16 * 1024 * 1024;

class HttpsSession : public std::enable_shared_from_this<HttpsSession> {
 public:
  HttpsSession(tcp::socket socket, SessionContext& context)
      : context_(context),
        tls_(std::make_unique<TlsSocket>(std::move(socket), context.tls.native_handle())),
        stream_(*tls_) {
    ++context_.open_connections;
  }
  ~HttpsSession() {
    if (counted_as_http1_)
      --context_.runtime.metrics().http1_connections;
    --context_.open_connections;
  }

  void start() {
    stream_.expires_after(context_.config.handshake_timeout);
    stream_.async_handshake([self = shared_from_this()](beast::error_code error, std::size_t) {
      self->context_.runtime.metrics().record_handshake(!error);
      if (error) {
        self->stream_.expires_after(std::chrono::seconds(1));
        return self->stream_.async_drain([self](beast::error_code) { self->stream_.close(); });
      }
      if (self->stream_.alpn() == "h2")
        return start_http2_session(std::move(self->tls_), self->context_);
      self->counted_as_http1_ = true;
      ++self->context_.runtime.metrics().http1_connections;
      self->read_request();
    });
  }

 private:
  void read_request() {
    if (context_.draining)
      return close();
    // Keep nothing large while idle: most connections wait between KMS requests.
    if (buffer_.size() == 0)
      buffer_.shrink_to_fit();
    parser_.emplace();
    parser_->body_limit(context_.config.max_body_bytes);
    parser_->header_limit(kMaxHeaderBytes);
    // Idle until the next request starts; from its first byte, the header timeout applies.
    stream_.expires_after(context_.config.idle_timeout);
    http::async_read_some(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code error, std::size_t) {
                            self->on_first_bytes(error);
                          });
  }

  void on_first_bytes(beast::error_code error) {
    if (error)
      return on_read_error(error);
    if (parser_->is_header_done())
      return on_header();
    stream_.expires_after(context_.config.header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code header_error, std::size_t) {
          if (header_error)
            return self->on_read_error(header_error);
          self->on_header();
        });
  }

  void on_header() {
    if (parser_->is_done())
      return dispatch();
    const auto& request = parser_->get();
    if (beast::iequals(request[http::field::expect], "100-continue")) {
      auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                        request.version());
      http::async_write(stream_, *interim,
                        [self = shared_from_this(), interim](beast::error_code error, std::size_t) {
                          if (error)
                            return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(context_.config.header_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code error, std::size_t) {
                       if (error)
                         return self->on_read_error(error);
                       self->dispatch();
                     });
  }

  void on_read_error(beast::error_code error) {
    if (error == http::error::body_limit) {
      linger_ = true;
      return respond({413, error_body(XksError::kPayloadTooLarge, "request body too large")},
                     false);
    }
    if (error == http::error::header_limit) {
      return respond({400, error_body(XksError::kValidation, "request header too large")}, false);
    }
    bool parse_error =
        error.category() == http::make_error_code(http::error::bad_target).category();
    if (parse_error && error != http::error::end_of_stream &&
        error != http::error::partial_message) {
      return respond({400, error_body(XksError::kValidation, "malformed HTTP request")}, false);
    }
    close();  // end of stream, timeout, or a transport error: nothing to answer
  }

  void dispatch() {
    auto& message = parser_->get();
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.client_subject = stream_.peer_subject();
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    stream_.expires_never();

    in_flight_ = true;
    dispatch_request(context_, std::move(request), stream_.get_executor(),
                     [self = shared_from_this()](HttpResponse response) {
                       self->respond(std::move(response), self->keep_alive_);
                     });
  }

  void respond(HttpResponse answer, bool keep_alive) {
    auto response = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(answer.status), version_ ? version_ : 11);
    response->set(http::field::content_type, "application/json");
    response->body() = std::move(answer.body);
    response->keep_alive(keep_alive && !context_.draining);
    response->prepare_payload();
    bool close_after = !response->keep_alive();
    stream_.expires_after(context_.config.idle_timeout);
    http::async_write(
        stream_, *response,
        [self = shared_from_this(), response, close_after](beast::error_code error, std::size_t) {
          if (std::exchange(self->in_flight_, false))
            request_finished(self->context_);
          if (error)
            return self->close();
          if (self->linger_)
            return self->discard_rest();
          if (close_after)
            return self->close();
          self->read_request();
        });
  }

  // After refusing an oversized body, keep reading (and dropping) what the client is still
  // sending for a moment, so that a client that writes its whole body before reading sees
  // the 413 instead of a reset connection.
  void discard_rest() {
    if (!scratch_)
      scratch_ = std::make_unique<std::array<char, 16 * 1024>>();
    stream_.expires_after(kLingerTime);
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

  SessionContext& context_;
  std::unique_ptr<TlsSocket> tls_;  // handed to HTTP/2 when ALPN chose h2
  TlsSocket& stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = true;
  bool in_flight_ = false;  // counted in requests_in_flight until its answer is written
  bool counted_as_http1_ = false;
  bool linger_ = false;  // drop the rest of an oversized body before closing
  std::size_t discarded_ = 0;
  std::unique_ptr<std::array<char, 16 * 1024>> scratch_;  // only while lingering
  unsigned version_ = 11;
};

}  // namespace

void start_https_session(tcp::socket socket, SessionContext& context) {
  std::make_shared<HttpsSession>(std::move(socket), context)->start();
}

}  // namespace xks::proxy
