// A TLS connection of the load engine, either protocol: connect and handshake with the run's
// TLS context, one request/answer exchange at a time (HTTP/2: several), and a deadline that a
// per-thread Watchdog enforces. Exchanges are C++20 coroutines on the connection's io_context.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <tl/expected.hpp>

#include "client.h"
#include "recorder.h"
#include "workload.h"

namespace xks::load {

namespace net = boost::asio;
using net::awaitable;
using TlsStream = net::ssl::stream<net::ip::tcp::socket>;

constexpr std::size_t kMaxAnswerBytes = 1 << 20;
// Unparsed answer bytes held at once (a header block, a chunk line, trailers): past it the
// read fails (buffer_overflow) instead of buffering whatever a broken server sends.
constexpr std::size_t kMaxUnparsedAnswerBytes = 64 * 1024;

// A failed connection or exchange; `what()` is the outcome label.
class TransportFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The label of a failed socket operation ("transport: timeout", "transport: <message>").
TransportFailure transport_failure(const boost::system::error_code& error);

struct Answer {
  unsigned status = 0;
  std::string body;
};

// Has the handshake on `ssl` send `host` as SNI and verify that the certificate names it (a
// DNS name or an IP address), as KMS does.
void expect_server_name(SSL* ssl, const std::string& host);

// Suspends the calling coroutine until `when` (at once if it has passed).
awaitable<void> sleep_until(Clock::time_point when);

// Everything the coroutines of one run share; read-only but for the schedule.
struct RunContext {
  const ClientOptions& options;
  std::unique_ptr<net::ssl::context> tls;  // streams need it mutable
  net::ip::tcp::resolver::results_type endpoints;
  Clock::duration timeout;
};

// The TLS context and the target's addresses, or why the run cannot start.
tl::expected<RunContext, std::string> prepare_run(const ClientOptions& options);

// A TLS connection whose deadline a per-thread watchdog enforces, so that no exchange arms a
// timer of its own (timers cost system calls at tens of thousands of requests per second).
class Connection {
 public:
  Connection(const net::any_io_executor& executor, const RunContext& run)
      : stream_(executor, *run.tls), timeout_(run.timeout) {}
  virtual ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // TCP connect and TLS handshake within the timeout; throws TransportFailure.
  awaitable<void> open(const RunContext& run);
  // After open(): starts whatever the protocol runs in the background.
  virtual void started() {}
  // Throws TransportFailure; the connection is then unusable.
  virtual awaitable<Answer> exchange(const PreparedRequest& request,
                                     const RequestFactory& factory) = 0;
  virtual bool usable() const = 0;
  virtual void close() {
    boost::system::error_code ignored;
    stream_.lowest_layer().close(ignored);
  }
  // Called by the watchdog: ends whatever has outlived its deadline.
  virtual void expire(Clock::time_point now) {
    if (now >= deadline_) {
      timed_out_ = true;
      deadline_ = Clock::time_point::max();
      close();
    }
  }

 protected:
  void arm() { deadline_ = Clock::now() + timeout_; }
  void disarm() { deadline_ = Clock::time_point::max(); }
  TransportFailure failure(const boost::system::error_code& error) const {
    return timed_out_ ? TransportFailure("transport: timeout") : transport_failure(error);
  }

  TlsStream stream_;
  Clock::duration timeout_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
};

std::shared_ptr<Connection> make_http1_connection(const net::any_io_executor& executor,
                                                  const RunContext& run);
std::shared_ptr<Connection> make_http2_connection(const net::any_io_executor& executor,
                                                  const RunContext& run);

}  // namespace xks::load
