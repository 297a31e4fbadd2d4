// Coroutine-driven HTTP/1.1 and HTTP/2 client connections over TLS for xks-load.
#include "client.h"

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cmath>
#include <map>
#include <stdexcept>
#include <thread>

namespace xks::load {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::awaitable;
using net::use_awaitable;
using TlsStream = net::ssl::stream<net::ip::tcp::socket>;

constexpr std::size_t kMaxAnswerBytes = 1 << 20;
// Unparsed answer bytes held at once (a header block, a chunk line, trailers): past it the
// read fails (buffer_overflow) instead of buffering whatever a broken server sends.
constexpr std::size_t kMaxUnparsedAnswerBytes = 64 * 1024;
constexpr auto kReconnectPause = std::chrono::milliseconds(100);
constexpr auto kWatchdogTick = std::chrono::milliseconds(20);

// A failed connection or exchange; `what()` is the outcome label.
class TransportFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

TransportFailure transport_failure(const boost::system::error_code& error) {
  if (error == beast::error::timeout)
    return TransportFailure("transport: timeout");
  return TransportFailure("transport: " + error.message());
}

struct Answer {
  unsigned status = 0;
  std::string body;
};

awaitable<void> sleep_until(Clock::time_point when) {
  if (Clock::now() >= when)
    co_return;
  net::steady_timer timer(co_await net::this_coro::executor, when);
  co_await timer.async_wait(net::as_tuple(use_awaitable));
}

// Everything the coroutines of one run share; read-only but for the schedule.
struct RunContext {
  const ClientOptions& options;
  std::unique_ptr<net::ssl::context> tls;  // streams need it mutable
  net::ip::tcp::resolver::results_type endpoints;
  Clock::duration timeout;
};

net::ssl::context make_tls_context(const ClientOptions& options) {
  net::ssl::context tls(net::ssl::context::tls_client);
  tls.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                  net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                  net::ssl::context::no_tlsv1_1);
  if (options.ca_file.empty())
    tls.set_default_verify_paths();
  else
    tls.load_verify_file(options.ca_file);
  tls.set_verify_mode(net::ssl::verify_peer);
  if (!options.client_certificate.empty()) {
    tls.use_certificate_chain_file(options.client_certificate);
    tls.use_private_key_file(options.client_key, net::ssl::context::pem);
  }
  static constexpr unsigned char kH2[] = "\x02h2";
  static constexpr unsigned char kHttp1[] = "\x08http/1.1";
  if (options.http2)
    SSL_CTX_set_alpn_protos(tls.native_handle(), kH2, sizeof kH2 - 1);
  else
    SSL_CTX_set_alpn_protos(tls.native_handle(), kHttp1, sizeof kHttp1 - 1);
  return tls;
}

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

awaitable<void> Connection::open(const RunContext& run) {
  arm();
  auto [connect_error, endpoint] = co_await net::async_connect(stream_.next_layer(), run.endpoints,
                                                               net::as_tuple(use_awaitable));
  if (connect_error)
    throw failure(connect_error);
  stream_.next_layer().set_option(net::ip::tcp::no_delay(true));
  SSL* ssl = stream_.native_handle();
  const std::string& host = run.options.target.host;
  boost::system::error_code not_an_address;
  net::ip::make_address(host, not_an_address);
  if (not_an_address) {
    // SNI (SSL_set_tlsext_host_name is a macro with a C cast) and name verification.
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(host.c_str()));
    SSL_set1_host(ssl, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  }
  auto [handshake_error] =
      co_await stream_.async_handshake(net::ssl::stream_base::client, net::as_tuple(use_awaitable));
  if (handshake_error)
    throw failure(handshake_error);
  disarm();
  const unsigned char* protocol = nullptr;
  unsigned int protocol_length = 0;
  SSL_get0_alpn_selected(ssl, &protocol, &protocol_length);
  std::string_view selected(reinterpret_cast<const char*>(protocol), protocol_length);
  if (run.options.http2 && selected != "h2")
    throw TransportFailure("transport: the server did not agree to HTTP/2 (ALPN)");
}

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

// One nghttp2 client session; each exchange is a stream, awaited on a timer (that never
// expires) which the session's callbacks, or the watchdog at the stream's deadline, cancel.
class Http2Connection final : public Connection,
                              public std::enable_shared_from_this<Http2Connection> {
 public:
  Http2Connection(const net::any_io_executor& executor, const RunContext& run)
      : Connection(executor, run) {
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &Http2Connection::on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Http2Connection::on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
                                                           &Http2Connection::on_stream_close);
    nghttp2_session_client_new(&session_, callbacks, this);
    nghttp2_session_callbacks_del(callbacks);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Http2Connection() override { nghttp2_session_del(session_); }

  // After open(): starts reading and sends the connection preface.
  void start() {
    net::co_spawn(stream_.get_executor(), read_loop(shared_from_this()), net::detached);
    flush();
  }

  awaitable<Answer> exchange(const PreparedRequest& request,
                             const RequestFactory& factory) override {
    if (failed_)
      throw TransportFailure(failure_);
    net::steady_timer wake(stream_.get_executor(), Clock::time_point::max());
    Pending pending{.wake = &wake, .body = request.body, .deadline = Clock::now() + timeout_};
    std::string length = std::to_string(request.body.size());
    auto header = [](std::string_view name, std::string_view value) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                        value.size(), NGHTTP2_NV_FLAG_NONE};
    };
    const nghttp2_nv headers[] = {header(":method", "POST"),
                                  header(":scheme", "https"),
                                  header(":authority", factory.authority()),
                                  header(":path", request.path),
                                  header("x-amz-date", request.amz_date),
                                  header("authorization", request.authorization),
                                  header("content-type", "application/json"),
                                  header("content-length", length)};
    nghttp2_data_provider body{};
    body.read_callback = &Http2Connection::read_body;
    int32_t id =
        nghttp2_submit_request(session_, nullptr, headers, std::size(headers), &body, nullptr);
    if (id < 0)
      throw TransportFailure(std::string("transport: h2: ") + nghttp2_strerror(id));
    streams_[id] = &pending;
    flush();
    co_await wake.async_wait(net::as_tuple(use_awaitable));
    if (!pending.done) {
      streams_.erase(id);
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      flush();
      throw TransportFailure("transport: timeout");
    }
    if (!pending.failure.empty())
      throw TransportFailure(pending.failure);
    co_return std::move(pending.answer);
  }

  bool usable() const override { return !failed_; }

  void close() override {
    if (!failed_)
      fail_all("transport: closed");
  }

  void expire(Clock::time_point now) override {
    Connection::expire(now);
    for (auto& [id, pending] : streams_) {
      if (now >= pending->deadline)
        pending->wake->cancel();  // not done: the exchange resets the stream
    }
  }

 private:
  struct Pending {
    net::steady_timer* wake = nullptr;
    std::string_view body;
    Clock::time_point deadline;
    std::size_t body_sent = 0;
    Answer answer{};
    bool done = false;
    std::string failure{};
  };

  Pending* pending(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : it->second;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                       void* user_data) {
    auto* self = static_cast<Http2Connection*>(user_data);
    Pending* pending = self->pending(frame->hd.stream_id);
    std::string_view header_name(reinterpret_cast<const char*>(name), name_length);
    if (pending && header_name == ":status") {
      std::string_view text(reinterpret_cast<const char*>(value), value_length);
      pending->answer.status = 0;
      for (char digit : text)
        pending->answer.status = pending->answer.status * 10 + static_cast<unsigned>(digit - '0');
    }
    return 0;
  }

  static int on_data(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                     size_t length, void* user_data) {
    auto* self = static_cast<Http2Connection*>(user_data);
    if (Pending* pending = self->pending(stream_id)) {
      if (pending->answer.body.size() + length > kMaxAnswerBytes)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      pending->answer.body.append(reinterpret_cast<const char*>(data), length);
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data) {
    auto* self = static_cast<Http2Connection*>(user_data);
    auto it = self->streams_.find(stream_id);
    if (it == self->streams_.end())
      return 0;
    Pending* pending = it->second;
    self->streams_.erase(it);
    pending->done = true;
    if (error_code != NGHTTP2_NO_ERROR || pending->answer.status == 0) {
      pending->failure =
          std::string("transport: h2 stream reset: ") + nghttp2_http2_strerror(error_code);
    }
    pending->wake->cancel();
    return 0;
  }

  static ssize_t read_body(nghttp2_session*, int32_t stream_id, uint8_t* buffer, size_t length,
                           uint32_t* flags, nghttp2_data_source*, void* user_data) {
    auto* self = static_cast<Http2Connection*>(user_data);
    Pending* pending = self->pending(stream_id);
    if (!pending)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    std::size_t chunk = std::min(length, pending->body.size() - pending->body_sent);
    std::copy_n(pending->body.data() + pending->body_sent, chunk, buffer);
    pending->body_sent += chunk;
    if (pending->body_sent == pending->body.size())
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(chunk);
  }

  static awaitable<void> read_loop(std::shared_ptr<Http2Connection> self) {
    std::array<uint8_t, 16384> buffer;
    while (!self->failed_) {
      auto [error, length] =
          co_await self->stream_.async_read_some(net::buffer(buffer), net::as_tuple(use_awaitable));
      if (self->failed_)
        break;
      if (error) {
        self->fail_all(self->failure(error).what());
        break;
      }
      ssize_t consumed = nghttp2_session_mem_recv(self->session_, buffer.data(), length);
      if (consumed < 0) {
        self->fail_all(std::string("transport: h2: ") +
                       nghttp2_strerror(static_cast<int>(consumed)));
        break;
      }
      self->flush();
      if (!nghttp2_session_want_read(self->session_) &&
          !nghttp2_session_want_write(self->session_)) {
        self->fail_all("transport: h2 session ended (GOAWAY)");
      }
    }
  }

  // Writes whatever the session has queued; one writer at a time.
  void flush() {
    if (writing_ || failed_)
      return;
    writing_ = true;
    net::co_spawn(stream_.get_executor(), write_loop(shared_from_this()), net::detached);
  }

  static awaitable<void> write_loop(std::shared_ptr<Http2Connection> self) {
    while (!self->failed_) {
      self->out_.clear();
      for (;;) {
        const uint8_t* data = nullptr;
        ssize_t length = nghttp2_session_mem_send(self->session_, &data);
        if (length < 0) {
          self->fail_all(std::string("transport: h2: ") +
                         nghttp2_strerror(static_cast<int>(length)));
          break;
        }
        if (length == 0)
          break;
        self->out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(length));
      }
      if (self->out_.empty() || self->failed_)
        break;
      auto [error, written] = co_await net::async_write(self->stream_, net::buffer(self->out_),
                                                        net::as_tuple(use_awaitable));
      if (error && !self->failed_)
        self->fail_all(self->failure(error).what());
    }
    self->writing_ = false;
  }

  void fail_all(std::string why) {
    failed_ = true;
    failure_ = std::move(why);
    for (auto& [id, pending] : streams_) {
      pending->done = true;
      pending->failure = failure_;
      pending->wake->cancel();
    }
    streams_.clear();
    Connection::close();
  }

  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Pending*> streams_;
  std::string out_;
  bool writing_ = false;
  bool failed_ = false;
  std::string failure_;
};

// One per worker thread: ends the connections and streams that outlive their deadline, checking
// every few milliseconds, until told that its thread's work is done.
class Watchdog {
 public:
  void watch(const std::shared_ptr<Connection>& connection) { watched_.push_back(connection); }
  void work_started() { ++working_; }
  void work_done() { --working_; }

  awaitable<void> run() {
    net::steady_timer tick(co_await net::this_coro::executor);
    while (working_ > 0) {
      tick.expires_after(kWatchdogTick);
      co_await tick.async_wait(net::as_tuple(use_awaitable));
      auto now = Clock::now();
      std::erase_if(watched_, [](const auto& weak) { return weak.expired(); });
      for (const auto& weak : watched_) {
        if (auto connection = weak.lock())
          connection->expire(now);
      }
    }
  }

 private:
  std::vector<std::weak_ptr<Connection>> watched_;
  unsigned working_ = 0;
};

// Opens a connection of the run's protocol, watched from the start.
awaitable<std::shared_ptr<Connection>> open_connection(const RunContext& run, Watchdog& watchdog) {
  auto executor = co_await net::this_coro::executor;
  std::shared_ptr<Connection> connection;
  std::shared_ptr<Http2Connection> http2;
  if (run.options.http2)
    connection = http2 = std::make_shared<Http2Connection>(executor, run);
  else
    connection = std::make_shared<Http1Connection>(executor, run);
  watchdog.watch(connection);
  co_await connection->open(run);
  if (http2)
    http2->start();
  co_return connection;
}

// One worker thread's share of the run.
struct Worker {
  net::io_context context{1};
  Recorder& recorder;
  RequestFactory factory;
  Watchdog watchdog{};
};

// Runs `task` on the worker's thread, keeping its watchdog going until the task ends.
void spawn_watched(Worker& worker, awaitable<void> task) {
  worker.watchdog.work_started();
  net::co_spawn(worker.context, std::move(task),
                [&worker](std::exception_ptr) { worker.watchdog.work_done(); });
}

// Requests on one open connection until the run is over or the connection fails.
awaitable<void> run_requests(const RunContext& run, Schedule& schedule, Worker& worker,
                             Connection& connection) {
  while (connection.usable()) {
    auto due = schedule.next();
    if (!due)
      co_return;
    co_await sleep_until(*due);
    PreparedRequest request = worker.factory.make(worker.factory.pick());
    try {
      Answer answer = co_await connection.exchange(request, worker.factory);
      worker.recorder.record(*due, Clock::now(),
                             judge(request, answer.status, answer.body, run.options.verify));
    } catch (const TransportFailure& failure) {
      worker.recorder.record(*due, Clock::now(), {OutcomeKind::kTransport, failure.what()});
      co_return;
    }
  }
}

// A keep-alive connection (HTTP/2: with `streams` requests in flight), reopened after failures
// until the run is over.
awaitable<void> run_connection(const RunContext& run, Schedule& schedule, Worker& worker,
                               unsigned index) {
  co_await sleep_until(schedule.connection_start(index, run.options.connections));
  unsigned streams = run.options.http2 ? run.options.streams : 1;
  while (!schedule.over()) {
    std::shared_ptr<Connection> connection;
    try {
      connection = co_await open_connection(run, worker.watchdog);
      worker.recorder.connection_opened();
    } catch (const TransportFailure& failure) {
      worker.recorder.record_failure(Clock::now(), {OutcomeKind::kTransport, failure.what()});
    }
    if (!connection) {
      co_await sleep_until(Clock::now() + kReconnectPause);
      continue;
    }
    unsigned remaining = streams;
    net::steady_timer all_done(co_await net::this_coro::executor, Clock::time_point::max());
    for (unsigned i = 0; i < streams; ++i) {
      net::co_spawn(worker.context, run_requests(run, schedule, worker, *connection),
                    [&](std::exception_ptr) {
                      if (--remaining == 0)
                        all_done.expires_at(Clock::time_point::min());
                    });
    }
    co_await all_done.async_wait(net::as_tuple(use_awaitable));
    connection->close();
  }
}

// New-connection-per-request mode: each latency includes the TCP and TLS handshakes.
awaitable<void> run_fresh_connections(const RunContext& run, Schedule& schedule, Worker& worker,
                                      unsigned index) {
  co_await sleep_until(schedule.connection_start(index, run.options.connections));
  while (auto due = schedule.next()) {
    co_await sleep_until(*due);
    PreparedRequest request = worker.factory.make(worker.factory.pick());
    try {
      std::shared_ptr<Connection> connection = co_await open_connection(run, worker.watchdog);
      worker.recorder.connection_opened();
      Answer answer = co_await connection->exchange(request, worker.factory);
      worker.recorder.record(*due, Clock::now(),
                             judge(request, answer.status, answer.body, run.options.verify));
      connection->close();
    } catch (const TransportFailure& failure) {
      worker.recorder.record(*due, Clock::now(), {OutcomeKind::kTransport, failure.what()});
    }
  }
}

// The TLS context and the target's addresses, or why the run cannot start.
tl::expected<RunContext, std::string> prepare(const ClientOptions& options) {
  std::unique_ptr<net::ssl::context> tls;
  try {
    tls = std::make_unique<net::ssl::context>(make_tls_context(options));
  } catch (const boost::system::system_error& error) {
    return tl::unexpected("TLS setup: " + std::string(error.what()));
  }
  net::io_context context;
  net::ip::tcp::resolver resolver(context);
  boost::system::error_code error;
  auto endpoints = resolver.resolve(options.target.host, options.target.port, error);
  if (error) {
    return tl::unexpected("cannot resolve " + options.target.host + ":" + options.target.port +
                          ": " + error.message());
  }
  return RunContext{options, std::move(tls), std::move(endpoints),
                    std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(options.timeout_seconds))};
}

}  // namespace

Schedule::Schedule(Clock::time_point start, double seconds, double rate, double ramp_seconds,
                   std::uint64_t max_requests)
    : start_(start),
      end_(start + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(ramp_seconds + seconds))),
      seconds_(ramp_seconds + seconds),
      rate_(rate),
      ramp_seconds_(ramp_seconds),
      max_requests_(max_requests) {}

// Open loop: the rate grows linearly to `rate_` over the ramp, so by time t < T the ticket
// count is rate t^2 / 2T; after it, rate T / 2 + rate (t - T).
Clock::time_point Schedule::due_time(std::uint64_t ticket) const {
  double n = static_cast<double>(ticket);
  double ramp_tickets = rate_ * ramp_seconds_ / 2;
  double at = n < ramp_tickets ? std::sqrt(2 * ramp_seconds_ * n / rate_)
                               : ramp_seconds_ + (n - ramp_tickets) / rate_;
  return start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
}

std::uint64_t Schedule::due_before(double seconds) const {
  double ramp = std::min(seconds, ramp_seconds_);
  double count = ramp_seconds_ > 0 ? rate_ * ramp * ramp / (2 * ramp_seconds_) : 0;
  count += rate_ * std::max(0.0, seconds - ramp_seconds_);
  auto due = static_cast<std::uint64_t>(std::ceil(count));
  return max_requests_ != 0 ? std::min(due, max_requests_) : due;
}

std::optional<Clock::time_point> Schedule::next() {
  auto now = Clock::now();
  if (now >= end_ || exhausted_.load(std::memory_order_relaxed))
    return std::nullopt;
  if (rate_ <= 0 && max_requests_ == 0)
    return now;
  std::uint64_t ticket = tickets_.fetch_add(1, std::memory_order_relaxed);
  Clock::time_point due = rate_ > 0 ? due_time(ticket) : now;
  if ((max_requests_ != 0 && ticket >= max_requests_) || due >= end_) {
    exhausted_ = true;
    return std::nullopt;
  }
  return due;
}

bool Schedule::over() const {
  return exhausted_.load(std::memory_order_relaxed) || Clock::now() >= end_;
}

Clock::time_point Schedule::connection_start(unsigned index, unsigned count) const {
  if (rate_ > 0 || count == 0)
    return start_;
  return start_ + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(ramp_seconds_ * index / count));
}

std::uint64_t Schedule::unsent() const {
  if (rate_ <= 0)
    return 0;
  std::uint64_t due = due_before(seconds_);
  std::uint64_t sent = std::min(tickets_.load(), due);
  return due - sent;
}

tl::expected<void, std::string> run_load(const ClientOptions& options, const WorkloadMix& mix,
                                         std::shared_ptr<const std::vector<SealedRecord>> sealed,
                                         Schedule& schedule,
                                         std::vector<std::unique_ptr<Recorder>>& recorders) {
  auto run = prepare(options);
  if (!run)
    return tl::unexpected(run.error());
  std::vector<std::unique_ptr<Worker>> workers;
  std::random_device seeds;
  for (auto& recorder : recorders) {
    std::uint64_t seed = (std::uint64_t{seeds()} << 32) | seeds();
    workers.push_back(std::unique_ptr<Worker>(new Worker{
        .recorder = *recorder, .factory = RequestFactory(options.target, mix, sealed, seed)}));
  }
  for (unsigned i = 0; i < options.connections; ++i) {
    Worker& worker = *workers[i % workers.size()];
    spawn_watched(worker, options.new_connection_per_request
                              ? run_fresh_connections(*run, schedule, worker, i)
                              : run_connection(*run, schedule, worker, i));
  }
  for (auto& worker : workers)
    net::co_spawn(worker->context, worker->watchdog.run(), net::detached);
  std::vector<std::thread> threads;
  for (auto& worker : workers)
    threads.emplace_back([&context = worker->context] { context.run(); });
  for (auto& thread : threads)
    thread.join();
  return {};
}

tl::expected<std::vector<SealedRecord>, std::string> warm_up(const ClientOptions& options,
                                                             const WorkloadMix& mix,
                                                             unsigned per_key) {
  auto run = prepare(options);
  if (!run)
    return tl::unexpected(run.error());
  std::vector<SealedRecord> sealed;
  std::string failure;
  net::io_context context;
  Watchdog watchdog;
  RequestFactory factory(options.target, mix, nullptr, std::random_device{}());
  auto seal_all = [&]() -> awaitable<void> {
    std::shared_ptr<Connection> connection;
    for (const std::string& key_id : mix.key_ids) {
      for (unsigned i = 0; i < per_key && failure.empty(); ++i) {
        if (!connection || !connection->usable())
          connection = co_await open_connection(*run, watchdog);
        PreparedRequest request = factory.make(Operation::kEncrypt, key_id);
        Answer answer = co_await connection->exchange(request, factory);
        auto record = answer.status == 200 ? seal_from_answer(request, answer.body) : std::nullopt;
        if (record) {
          sealed.push_back(std::move(*record));
        } else {
          failure = "warm-up Encrypt under key " + key_id + ": " +
                    judge(request, answer.status, answer.body, true).label;
        }
      }
    }
    connection->close();
  };
  watchdog.work_started();
  net::co_spawn(context, seal_all(), [&](std::exception_ptr error) {
    watchdog.work_done();
    if (!error)
      return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      failure = std::string("warm-up: ") + e.what();
    }
  });
  net::co_spawn(context, watchdog.run(), net::detached);
  context.run();
  if (!failure.empty())
    return tl::unexpected(failure);
  return sealed;
}

}  // namespace xks::load
