// An HTTP/1.1 keep-alive connection: one request at a time, answers parsed by Beast's
// basic_parser with bounded buffers.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/read.hpp>

#include "connection.h"

namespace xks::load {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using net::use_awaitable;

// Keeps an answer's status and body only (into a buffer the connection reuses): the load
// engine reads no header, and a Beast message would allocate one node per header field.
class AnswerParser final : public http::basic_parser<false> {
 public:
  explicit AnswerParser(std::string& body) : body_(body) {
    body_.clear();
    body_limit(kMaxAnswerBytes);
  }
  unsigned status() const { return status_; }

 private:
  using error_code = boost::system::error_code;
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, error_code&) override {
    status_ = static_cast<unsigned>(code);
  }
  void on_field_impl(http::field, beast::string_view, beast::string_view, error_code&) override {}
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (length)
      body_.reserve(static_cast<std::size_t>(*length));
  }
  std::size_t on_body_impl(beast::string_view data, error_code&) override {
    body_.append(data.data(), data.size());
    return data.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data, error_code&) override {
    body_.append(data.data(), data.size());
    return data.size();
  }
  void on_finish_impl(error_code&) override {}

  std::string& body_;
  unsigned status_ = 0;
};

class Http1Connection final : public Connection {
 public:
  using Connection::Connection;

  awaitable<Answer> exchange(const PreparedRequest& request,
                             const RequestFactory& factory) override {
    factory.http1(request, wire_);
    AnswerParser parser(body_);
    arm();
    auto [write_error, written] =
        co_await net::async_write(stream_, net::buffer(wire_), net::as_tuple(use_awaitable));
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
    usable_ = parser.keep_alive();
    co_return Answer{parser.status(), body_};
  }

  bool usable() const override { return usable_; }
  void close() override {
    usable_ = false;
    Connection::close();
  }

 private:
  std::string wire_;
  std::string body_;
  beast::flat_buffer buffer_{kMaxUnparsedAnswerBytes};
  bool usable_ = true;
};

}  // namespace

std::shared_ptr<Connection> make_http1_connection(const net::any_io_executor& executor,
                                                  const RunContext& run) {
  return std::make_shared<Http1Connection>(executor, run);
}

}  // namespace xks::load
