// HTTP/1.1 requests from bytes, every limit checked before anything is kept.
#include "http1_request_reader.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <cstring>

namespace xks::proxy {

namespace http = boost::beast::http;

namespace {

constexpr std::size_t kFieldOverhead = 32;

// RFC 3986 authority as a Host value: a reg-name, IPv4 or bracketed IPv6 literal, and a port.
bool is_valid_host(std::string_view host) {
  if (host.empty())
    return false;
  for (char c : host) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_' ||
                   c == '~' || c == '%';
    if (!allowed)
      return false;
  }
  return true;
}

bool starts_with_scheme(std::string_view target, std::string_view scheme) {
  return target.size() >= scheme.size() &&
         boost::beast::iequals(target.substr(0, scheme.size()), scheme);
}

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
  header_scanned_ = 0;
  header_end_seen_ = false;
  if (!has_buffered_bytes()) {
    // Keep nothing while idle: most connections wait between KMS requests.
    buffer_.reset();
    begin_ = end_ = 0;
  }
}

boost::asio::mutable_buffer Http1RequestReader::prepare() {
  if (!buffer_)
    buffer_ = std::make_unique_for_overwrite<char[]>(limits_.max_header_bytes);
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
    if (!had_header && header_has_folded_line())
      return refuse(HttpRefusal::kMalformed);
    boost::system::error_code error;
    std::size_t used =
        parser_->put(boost::asio::buffer(buffer_.get() + begin_, end_ - begin_), error);
    begin_ += used;
    if (!had_header && parser_->is_header_done()) {
      if (!header_is_unambiguous())
        return refuse(HttpRefusal::kMalformed);
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

// A header line that starts with SP or HTAB continues the one before (obs-fold, RFC 9112 §5.2):
// refused rather than merged, as Beast would. The header waits whole in the buffer until it
// ends (Beast consumes nothing of it before), so each byte is scanned once.
bool Http1RequestReader::header_has_folded_line() {
  const char* data = buffer_.get() + begin_;
  std::size_t size = end_ - begin_;
  for (std::size_t i = std::max<std::size_t>(header_scanned_, 1); i < size && !header_end_seen_;
       ++i) {
    if (data[i - 1] != '\n')
      continue;
    if (data[i] == ' ' || data[i] == '\t')
      return true;
    header_end_seen_ = data[i] == '\r' || data[i] == '\n';  // the empty line: no more fields
  }
  header_scanned_ = size;
  return false;
}

// An origin server's checks of the header (RFC 9112, RFC 9110): what is ambiguous is refused,
// before the body is read and before anything is authenticated.
bool Http1RequestReader::header_is_unambiguous() {
  const auto& message = parser_->get();
  if (message.version() != 10 && message.version() != 11)
    return false;
  // §3.2: exactly one Host field, a valid authority (required in HTTP/1.1).
  std::size_t hosts = 0;
  for (const auto& field : message) {
    if (field.name() == http::field::host && (++hosts > 1 || !is_valid_host(field.value())))
      return false;
  }
  if (hosts == 0 && message.version() == 11)
    return false;
  // §6.1, §6.3: Transfer-Encoding only in HTTP/1.1, exactly "chunked" (the one coding this
  // server applies), and never with Content-Length: such framing could be read two ways.
  std::size_t codings = 0;
  for (const auto& field : message) {
    if (field.name() != http::field::transfer_encoding)
      continue;
    if (++codings > 1 || !boost::beast::iequals(field.value(), "chunked"))
      return false;
  }
  if (codings > 0 && (message.version() == 10 || message.count(http::field::content_length) > 0))
    return false;
  // §3.2: origin-form, or the absolute-form a server must accept; nothing else here.
  std::string_view target = message.target();
  if (target.starts_with('/'))
    return true;
  if (!starts_with_scheme(target, "https://") && !starts_with_scheme(target, "http://"))
    return false;
  std::string_view authority = target.substr(target.find("://") + 3);
  return is_valid_host(authority.substr(0, authority.find_first_of("/?")));
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
  if (!request_.target.starts_with('/'))
    use_absolute_form();
  version_ = message.version();
  keep_alive_ = message.keep_alive();
  return true;
}

// §3.2.2: for a target in absolute-form, its authority is the host (the Host field is replaced)
// and its path is what is served.
void Http1RequestReader::use_absolute_form() {
  std::string_view target = request_.target;
  target.remove_prefix(target.find("://") + 3);
  std::size_t path = target.find_first_of("/?");
  std::string authority(target.substr(0, path));
  std::string rest(path == std::string_view::npos ? std::string_view("/") : target.substr(path));
  if (rest.starts_with('?'))
    rest.insert(0, "/");
  for (auto& [name, value] : request_.headers) {
    if (boost::beast::iequals(name, "host"))
      value = authority;
  }
  request_.target = std::move(rest);
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
