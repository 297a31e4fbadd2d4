// Reads HTTP/1.1 requests (RFC 9112) from bytes as they arrive, with no I/O of its own, so the
// TLS session and the fuzz target drive the same code. Nothing a peer sends is stored beyond
// the limits: unparsed bytes wait in a buffer of max_header_bytes, which the request line and
// header block, each chunk-size line with its extensions, and the trailer block must each fit
// in; the header's fields also count as in HTTP/2 (name + value + 32 each), so thousands of
// tiny fields are refused too; the body goes into the request, at most max_body_bytes with or
// without chunked coding. What an origin server must refuse as ambiguous (RFC 9112: Host,
// framing, request-target forms) is refused once the header has ended, before the body.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <optional>

#include "xks/proxy/config/http_limits.h"
#include "xks/proxy/transport/http_message.h"

namespace xks::proxy {

class Http1RequestReader {
 public:
  enum class Status { kNeedMore, kComplete, kRefused };

  explicit Http1RequestReader(const HttpLimits& limits);

  // Starts the next request on the connection. Bytes the peer already sent after the previous
  // request (pipelining) stay buffered: call parse() before reading more.
  void next_request();
  bool has_buffered_bytes() const { return begin_ < end_; }

  // Where the next bytes from the peer go: never empty while the status is kNeedMore.
  boost::asio::mutable_buffer prepare();
  // Takes `bytes` written at prepare() and parses as far as they go.
  Status commit(std::size_t bytes);
  Status parse();

  bool header_done() const { return parser_->is_header_done(); }
  // The header asked for "100 Continue" and the body has not all arrived yet.
  bool expects_continue() const;

  // Once the header is done: the HTTP version (10 or 11) and whether the connection stays open,
  // both as the header said (a trailer cannot change them).
  unsigned version() const { return version_; }
  bool keep_alive() const { return keep_alive_; }
  // After kComplete: the request, with the header fields as they were when the header ended
  // (trailer fields are not merged in, RFC 9110 §6.5.1).
  HttpRequest take_request();

  // After kRefused: why. The connection closes after the answer.
  HttpRefusal refusal() const { return *refusal_; }

 private:
  // RFC 9112 §3.2 and §6: one valid Host, HTTP/1.0 or 1.1, unambiguous framing, a target in
  // origin-form or absolute-form.
  bool header_is_unambiguous();
  bool header_has_folded_line();
  // Copies the header out of the parser; false when its fields count over max_header_bytes.
  bool take_header();
  void use_absolute_form();
  Status refuse(HttpRefusal reason);

  const HttpLimits& limits_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::unique_ptr<char[]> buffer_;  // max_header_bytes; [begin_, end_) not yet parsed
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  HttpRequest request_;  // taken from the header when it ends; the body is added at the end
  unsigned version_ = 11;
  bool keep_alive_ = true;
  std::optional<HttpRefusal> refusal_;
  std::size_t header_scanned_ = 0;  // header bytes (from begin_) checked for folded lines
  bool header_end_seen_ = false;
};

}  // namespace xks::proxy
