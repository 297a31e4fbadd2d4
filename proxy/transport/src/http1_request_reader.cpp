// HTTP/1.1 requests from bytes, every limit checked before anything is kept.
#include "http1_request_reader.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <cstring>

namespace xks::proxy {

namespace http = boost::beast::http;

namespace {
constexpr std::size_t kFieldOverhead = 32;
}  // namespace

Http1RequestReader::Http1RequestReader(const HttpLimits& limits) : limits_(limits) {
  next_request();
}

void Http1RequestReader::next_request() {
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
  parser_->body_limit(limits_.max_body_bytes);
  request_ = {};
  version_ = 11;
  keep_alive_ = true;
  refusal_.reset();
  if (!has_buffered_bytes()) {
    // Keep nothing while idle: most connections wait between KMS requests.
    buffer_.reset();
    begin_ = end_ = 0;
  }
}

boost::asio::mutable_buffer Http1RequestReader::prepare() {
  if (!buffer_)
    buffer_ = std::make_unique<char[]>(limits_.max_header_bytes);
  if (begin_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  return boost::asio::buffer(buffer_.get() + end_, limits_.max_header_bytes - end_);
}

Http1RequestReader::Status Http1RequestReader::commit(std::size_t bytes) {
  end_ += bytes;
  return parse();
}

bool Http1RequestReader::expects_continue() const {
  return parser_->is_header_done() && !parser_->is_done() &&
         boost::beast::iequals(parser_->get()[http::field::expect], "100-continue");
}

Http1RequestReader::Status Http1RequestReader::parse() {
  if (refusal_)
    return Status::kRefused;
  while (!parser_->is_done()) {
    if (!has_buffered_bytes())
      return Status::kNeedMore;
    bool had_header = parser_->is_header_done();
    boost::system::error_code error;
    std::size_t used =
        parser_->put(boost::asio::buffer(buffer_.get() + begin_, end_ - begin_), error);
    begin_ += used;
    if (!had_header && parser_->is_header_done()) {
      if (!take_header())
        return refuse(HttpRefusal::kHeaderBytes);
      // From here on, take as much body as has arrived in each call.
      parser_->eager(true);
    }
    if (error == http::error::need_more) {
      // Whatever is pending must fit in the buffer: a longer header block, chunk-size line
      // or trailer block is refused here, before more of it is read.
      if (end_ - begin_ >= limits_.max_header_bytes) {
        return parser_->is_header_done() ? refuse(HttpRefusal::kFramingBytes)
                                         : refuse(HttpRefusal::kHeaderBytes);
      }
      return Status::kNeedMore;
    }
    if (error == http::error::body_limit)
      return refuse(HttpRefusal::kBodyBytes);
    if (error == http::error::header_limit)
      return refuse(HttpRefusal::kHeaderBytes);
    if (error)
      return refuse(HttpRefusal::kMalformed);
  }
  return Status::kComplete;
}

bool Http1RequestReader::take_header() {
  const auto& message = parser_->get();
  // Many tiny fields cost far more memory than their bytes on the wire: count each as HTTP/2
  // does (RFC 9113 §6.5.2, name + value + 32), so one limit means the same in both protocols.
  std::size_t charged = message.target().size();
  for (const auto& field : message)
    charged += field.name_string().size() + field.value().size() + kFieldOverhead;
  if (charged > limits_.max_header_bytes)
    return false;
  request_.method = std::string(message.method_string());
  request_.target = std::string(message.target());
  for (const auto& field : message)
    request_.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  version_ = message.version();
  keep_alive_ = message.keep_alive();
  return true;
}

HttpRequest Http1RequestReader::take_request() {
  request_.body = std::move(parser_->get().body());
  parser_.emplace();  // nothing of this request (trailers included) is kept while it is served
  return std::move(request_);
}

Http1RequestReader::Status Http1RequestReader::refuse(HttpRefusal reason) {
  refusal_ = reason;
  return Status::kRefused;
}

}  // namespace xks::proxy
