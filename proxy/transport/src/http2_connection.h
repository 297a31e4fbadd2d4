// The server side of one HTTP/2 connection (RFC 9113) as a state machine without I/O: an
// nghttp2 session fed the peer's bytes and drained of the bytes to send, so the TLS session and
// the fuzz target drive the same code. Requests come out whole; answers go back by stream id.
//
// Every byte a peer sends is bounded before it is stored (HttpLimits):
// - a header list over max_header_bytes (RFC 9113 §6.5.2 sizes, after HPACK decoding) is not
//   kept: the stream is answered (the application renders the refusal);
// - a body over max_body_bytes (declared or sent) is not kept: the stream is answered;
// - a connection holds at most http2_connection_buffer_bytes of request header lists and
//   bodies: header fields count as they arrive, and at the end of the header block the whole
//   body (its content-length, else max_body_bytes) is reserved; a stream that does not fit is
//   refused with RST_STREAM REFUSED_STREAM (safe to retry, RFC 9113 §8.7). Admitted bodies are
//   never stalled; bytes beyond a reservation are refused;
// - flow control backs this up: a stream starts with a 32 KiB window, opened to its reservation
//   (+1, to see an oversized body) when admitted; the connection window is twice the budget,
//   reopened only as bytes are released (answered or reset streams); a peer that ignores the
//   windows gets RST_STREAM or GOAWAY FLOW_CONTROL_ERROR;
// - a header list past twice max_header_bytes is not decoded further (RST_STREAM
//   ENHANCE_YOUR_CALM): nghttp2 checks every decoded field, and an HPACK byte can name 4 KiB;
// - at most http2_max_concurrent_streams requests at the handler (reset or not), 8 CONTINUATION
//   frames per header block, and nghttp2's flood limits (queued control-frame answers,
//   RST_STREAM rate) end the connection with GOAWAY;
// - a peer that resets more than http2_max_resets_per_second streams in a second ("rapid
//   reset") gets GOAWAY ENHANCE_YOUR_CALM.
// Every byte is bounded in time as well: a stream's header block must end within
// `phase_timeout` of its start, and its body within `phase_timeout` of the header block's end
// (as HTTP/1.1's header_timeout); expire() resets overdue streams (RST_STREAM CANCEL), so that
// half-sent requests kept alive by other frames cannot hold the connection's budget.
// A refused stream's further DATA is dropped and its window reopened at once. (No RST_STREAM
// NO_ERROR after the answer, RFC 9113 §8.1: curl reports that as an error.)
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "xks/proxy/config/http_limits.h"
#include "xks/proxy/transport/http_message.h"

struct nghttp2_session;

namespace xks::proxy {

class Http2Connection {
 public:
  using RequestHandler = std::function<void(std::int32_t stream_id, HttpRequest request)>;
  using RefusalHandler = std::function<void(HttpRefusal reason)>;
  using RefusalRenderer = std::function<HttpResponse(HttpRefusal reason)>;
  using Clock = std::chrono::steady_clock;

  // Queues the server's SETTINGS and connection window. `on_refusal` hears of every refusal;
  // `render` gives the answer to those answered with a response (header list or body too
  // large). The handlers run
  // from inside receive(); the request handler must not call back into this object.
  Http2Connection(const HttpLimits& limits, Clock::duration phase_timeout,
                  RequestHandler on_request, RefusalHandler on_refusal, RefusalRenderer render);
  ~Http2Connection();
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // Feeds what the peer sent. False when the peer broke the protocol beyond recovery: write what
  // send() still gives (a GOAWAY, when nghttp2 could queue one), then close.
  // `now` dates the streams it opens and the resets it counts.
  bool receive(std::span<const std::uint8_t> bytes, Clock::time_point now = Clock::now());
  // Appends queued output to `out`, stopping once `out` holds at least `max_bytes`.
  void send(std::string& out, std::size_t max_bytes);
  // The answer to a request handed out; dropped when the peer reset the stream meanwhile.
  void answer(std::int32_t stream_id, HttpResponse response);
  // Graceful close: GOAWAY NO_ERROR, once however often asked; streams already open still
  // finish.
  void go_away();
  bool going_away() const { return going_away_; }

  // When the first stream's request phase is due (nullopt: no stream is receiving), and the
  // resets of streams overdue at `now` (counted as kRequestTimeout refusals); returns how many.
  std::optional<Clock::time_point> next_due() const;
  std::size_t expire(Clock::time_point now);
  // No stream is open: nothing received in part, nothing at the handler.
  bool idle() const { return streams_.empty(); }

  bool wants_read() const;
  bool wants_write() const;
  // Request header and body bytes the connection holds now (what the budget counts).
  std::size_t buffered_bytes() const { return buffered_; }

 private:
  struct Stream {
    HttpRequest request;
    std::size_t header_list_bytes = 0;  // RFC 9113 sizes of every field seen, kept or not
    std::size_t held = 0;               // header bytes and reserved body, counted in buffered_
    std::size_t reserved = 0;           // the body it may send: content-length or the limit
    std::size_t body_window = 0;        // body bytes not yet given back to the window
    bool headers_done = false;          // the request's header block has ended
    bool refused = false;               // answered early; the rest of its request is dropped
    HttpResponse refusal;               // that answer, sent once the header block has ended
    bool at_handler = false;            // handed out, no answer yet
    bool closed = false;                // nghttp2 closed it while at the handler
    Clock::time_point due;              // its header block, then its body, is due by then
    // The response, read by nghttp2's data provider.
    std::string status;
    std::string content_length;
    std::string response_body;
    std::size_t sent = 0;
  };

  struct Callbacks;  // nghttp2's callbacks, defined with nghttp2's types in the .cpp

  // At the end of a request's header block: reserves its body against the budget, or refuses
  // the stream (REFUSED_STREAM, entry erased: false) or its body (answered).
  bool admit(std::int32_t stream_id, Stream& stream, std::uint8_t flags);
  void refuse(std::int32_t stream_id, Stream& stream, HttpRefusal reason);
  void submit_response(std::int32_t stream_id, Stream& stream, HttpResponse response);
  // Resets a stream we will not serve and forgets it.
  void drop(std::int32_t stream_id, std::uint32_t error_code);
  std::size_t initial_stream_window() const;
  // Still waiting for its request: not at the handler, and not answered (a response being
  // sent, refusals included, is never cut short).
  static bool receiving(const Stream& stream) {
    return !stream.at_handler && stream.status.empty();
  }
  // Forgets what the stream holds and gives its body bytes back to the connection window.
  void release(std::int32_t stream_id, Stream& stream);

  const HttpLimits& limits_;
  const Clock::duration phase_timeout_;
  RequestHandler on_request_;
  RefusalHandler on_refusal_;
  RefusalRenderer render_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, Stream> streams_;
  std::size_t buffered_ = 0;
  std::size_t at_handler_ = 0;  // requests handed out and not answered, reset or not
  Clock::time_point now_;       // of the bytes being received
  Clock::time_point resets_since_;
  std::uint32_t resets_ = 0;  // RST_STREAM frames from the peer since resets_since_
  bool reset_flood_ = false;
  bool goaway_counted_ = false;  // receive() counted why it ends the connection
  bool going_away_ = false;      // go_away() submitted its GOAWAY
};

}  // namespace xks::proxy
