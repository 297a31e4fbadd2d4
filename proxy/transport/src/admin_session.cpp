// Admin endpoints over plain HTTP/1.1. Requests are small GETs: the header block, any chunk
// line or trailer and the body are held to kMaxRequestBytes, whatever the client sends.
#include "admin_session.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace xks::proxy {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

constexpr std::size_t kMaxRequestBytes = 8 * 1024;

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket socket, ListenerState& context)
      : context_(context), stream_(std::move(socket)), buffer_(kMaxRequestBytes) {}

  // Takes an admin slot (the oldest admin connection gives way when they are all taken).
  void start(const boost::asio::ip::address& client) {
    auto admission = context_.admin_connections.admit(
        client, [weak = weak_from_this(), executor = stream_.get_executor()] {
          boost::asio::post(executor, [weak] {
            if (auto self = weak.lock()) {
              self->evicted_ = true;
              self->stream_.cancel();
            }
          });
        });
    if (!admission) {
      context_.metrics.record_connection_refused(TransportMetrics::Listener::kAdmin,
                                                 admission.error());
      return;
    }
    admission_ = std::move(*admission);
    admission_.handshake_done();
    read();
  }

  void read() {
    parser_.emplace();
    parser_->header_limit(kMaxRequestBytes);
    parser_->body_limit(kMaxRequestBytes);
    if (evicted_)
      return stream_.close();
    stream_.expires_after(context_.config.idle_timeout);
    // Asio's sockets never complete inside the initiating call, so this loop cannot recurse;
    // the bounded buffer (buffer_overflow past it) caps chunk lines and trailers.
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code error, std::size_t) {
                       if (error)
                         return self->stream_.socket().shutdown(tcp::socket::shutdown_both, error);
                       self->answer();
                     });
  }

 private:
  void answer() {
    const auto& request = parser_->get();
    auto response =
        std::make_shared<http::response<http::string_body>>(http::status::ok, request.version());
    response->set(http::field::content_type, "application/json");
    std::string_view target = request.target();
    if (request.method() != http::verb::get) {
      response->result(http::status::method_not_allowed);
      response->body() = R"({"status":"method not allowed"})";
    } else if (target == "/metrics") {
      context_.metrics.record_ready(ready());
      response->set(http::field::content_type, "text/plain; version=0.0.4");
      response->body() = context_.application.scrape();
    } else if (target == "/livez") {
      response->body() = R"({"status":"live"})";
    } else if (target == "/readyz") {
      bool ready = this->ready();
      context_.metrics.record_ready(ready);
      response->result(ready ? http::status::ok : http::status::service_unavailable);
      response->body() = ready ? R"({"status":"ready"})" : R"({"status":"not ready"})";
    } else {
      response->result(http::status::not_found);
      response->body() = R"({"status":"not found"})";
    }
    response->keep_alive(request.keep_alive());
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code error, std::size_t) {
                        if (error || !response->keep_alive()) {
                          return self->stream_.socket().shutdown(tcp::socket::shutdown_both, error);
                        }
                        self->read();
                      });
  }

  bool ready() const { return !context_.draining && context_.application.ready(); }

  ListenerState& context_;
  ConnectionTable::Admission admission_;
  bool evicted_ = false;  // closed to make room: no further reads
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

void start_admin_session(tcp::socket socket, ListenerState& context) {
  boost::system::error_code error;
  tcp::endpoint client = socket.remote_endpoint(error);
  if (error)
    return;  // the client is gone already
  std::make_shared<AdminSession>(std::move(socket), context)->start(client.address());
}

}  // namespace xks::proxy
