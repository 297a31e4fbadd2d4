// An HTTP/1.1 keep-alive connection: one request at a time, answers parsed by Beast with
// bounded buffers.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "connection.h"

namespace xks::load {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using net::use_awaitable;

class Http1Connection final : public Connection {
 public:
  using Connection::Connection;

  awaitable<Answer> exchange(const PreparedRequest& request,
                             const RequestFactory& factory) override {
    std::string wire = factory.http1(request);
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxAnswerBytes);
    arm();
    auto [write_error, written] =
        co_await net::async_write(stream_, net::buffer(wire), net::as_tuple(use_awaitable));
    boost::system::error_code error = write_error;
    if (!error) {
      auto [read_error, read] =
          co_await http::async_read(stream_, buffer_, parser, net::as_tuple(use_awaitable));
      error = read_error;
    }
    disarm();
    if (error) {
      usable_ = false;
      throw failure(error);
    }
    usable_ = parser.get().keep_alive();
    co_return Answer{parser.get().result_int(), std::move(parser.get().body())};
  }

  bool usable() const override { return usable_; }
  void close() override {
    usable_ = false;
    Connection::close();
  }

 private:
  beast::flat_buffer buffer_{kMaxUnparsedAnswerBytes};
  bool usable_ = true;
};

}  // namespace

std::shared_ptr<Connection> make_http1_connection(const net::any_io_executor& executor,
                                                  const RunContext& run) {
  return std::make_shared<Http1Connection>(executor, run);
}

}  // namespace xks::load
