// Listeners, I/O threads and graceful shutdown.
#include "xks/proxy/transport/server.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "admin_session.h"
#include "https_session.h"
#include "listener_state.h"

namespace xks::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Server::State {
  State(const ServerConfig& config_, std::shared_ptr<net::ssl::context> tls,
        Application application_, metrics::Registry& registry)
      : config(config_),
        application(std::move(application_)),
        metrics(registry),
        sessions{
            application, std::move(tls), config, metrics,
            ConnectionTable({config.max_connections, config.max_connections_per_client,
                             config.max_handshakes_in_flight,
                             std::max<std::size_t>(1, config.max_handshakes_in_flight / 8)},
                            [this](ConnectionTable::Limit limit) {
                              metrics.record_eviction(TransportMetrics::Listener::kXks, limit);
                            }),
            // Admin clients are few (scrapers, probes): one address holds at most a
            // quarter of the slots, and the oldest connection gives way.
            ConnectionTable(
                {config.admin_max_connections,
                 std::max<std::size_t>(1, config.admin_max_connections / 4), SIZE_MAX, SIZE_MAX},
                [this](ConnectionTable::Limit limit) {
                  metrics.record_eviction(TransportMetrics::Listener::kAdmin, limit);
                })} {
    unsigned count = config.io_threads;
    if (count == 0)
      count = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < count; ++i) {
      contexts.push_back(std::make_unique<net::io_context>(1));
      guards.push_back(net::make_work_guard(*contexts.back()));
    }
  }

  net::io_context& main_context() { return *contexts.front(); }
  net::io_context& next_context() { return *contexts[next++ % contexts.size()]; }

  const ServerConfig& config;
  Application application;
  TransportMetrics metrics;
  ListenerState sessions;  // before the contexts: sessions die with their io_context
  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::optional<tcp::acceptor> acceptor;
  std::optional<tcp::acceptor> admin_acceptor;
  // Pauses accepting after a failed accept (out of descriptors) instead of spinning.
  std::optional<net::steady_timer> accept_pause;
  std::optional<net::steady_timer> admin_accept_pause;
  std::chrono::steady_clock::time_point accept_warned;  // last warning of a failed accept
  std::size_t next = 0;
  std::vector<std::thread> threads;

  std::mutex mutex;
  std::condition_variable stop_requested;
  bool stopping = false;
};

namespace {

tl::expected<tcp::acceptor, std::string> bind(net::io_context& context,
                                              const ListenAddress& address) {
  boost::system::error_code error;
  auto ip = net::ip::make_address(address.host, error);
  if (error)
    return tl::unexpected("bad listen address " + address.host);
  tcp::endpoint endpoint(ip, address.port);
  tcp::acceptor acceptor(context);
  acceptor.open(endpoint.protocol(), error);
  if (!error)
    acceptor.set_option(net::socket_base::reuse_address(true), error);
  if (!error)
    acceptor.bind(endpoint, error);
  if (!error)
    acceptor.listen(net::socket_base::max_listen_connections, error);
  if (error) {
    return tl::unexpected("cannot listen on " + address.host + ":" + std::to_string(address.port) +
                          ": " + error.message());
  }
  return acceptor;
}

constexpr auto kAcceptPause = std::chrono::milliseconds(100);

constexpr auto kAcceptWarningInterval = std::chrono::seconds(10);

// After a failed accept (EMFILE, ENFILE, ENOBUFS...): counted, logged at most every 10 s, and
// accepting resumes after kAcceptPause rather than at once (which would spin, since the
// pending connection stays in the backlog).
void pause_accepting(Server::State& state, TransportMetrics::Listener listener,
                     net::steady_timer& pause, const boost::system::error_code& error,
                     void (*resume)(Server::State&)) {
  state.metrics.record_accept_error(listener);
  auto now = std::chrono::steady_clock::now();
  if (now - state.accept_warned >= kAcceptWarningInterval) {
    state.accept_warned = now;
    spdlog::warn("accept failed on the {} listener: {}; pausing {} ms",
                 listener == TransportMetrics::Listener::kXks ? "XKS" : "admin", error.message(),
                 kAcceptPause.count());
  }
  pause.expires_after(kAcceptPause);
  pause.async_wait([&state, resume](boost::system::error_code wait_error) {
    if (!wait_error)
      resume(state);
  });
}

// Accepts forever, handing each connection to the next I/O thread.
void accept_https(Server::State& state) {
  state.acceptor->async_accept(
      state.next_context(), [&state](boost::system::error_code error, tcp::socket socket) {
        if (error == net::error::operation_aborted)
          return;
        if (error) {
          return pause_accepting(state, TransportMetrics::Listener::kXks, *state.accept_pause,
                                 error, accept_https);
        }
        tcp::socket& raw = socket;
        net::post(raw.get_executor(), [&state, s = std::move(socket)]() mutable {
          start_https_session(std::move(s), state.sessions);
        });
        accept_https(state);
      });
}

void accept_admin(Server::State& state) {
  state.admin_acceptor->async_accept(
      state.main_context(), [&state](boost::system::error_code error, tcp::socket socket) {
        if (error == net::error::operation_aborted)
          return;
        if (error) {
          return pause_accepting(state, TransportMetrics::Listener::kAdmin,
                                 *state.admin_accept_pause, error, accept_admin);
        }
        start_admin_session(std::move(socket), state.sessions);
        accept_admin(state);
      });
}

}  // namespace

Server::Server(const ServerConfig& config, std::shared_ptr<net::ssl::context> tls,
               Application application, metrics::Registry& registry)
    : state_(std::make_unique<State>(config, std::move(tls), std::move(application), registry)) {
  // OpenSSL writes to the sockets itself (see TlsSocket), without MSG_NOSIGNAL: a peer that
  // has gone must cost an EPIPE on that connection, not the process.
  std::signal(SIGPIPE, SIG_IGN);
}

void Server::replace_tls(std::shared_ptr<net::ssl::context> tls) {
  state_->sessions.tls.store(std::move(tls));
}

Server::~Server() {
  stop();
  for (auto& thread : state_->threads) {
    if (thread.joinable())
      thread.join();
  }
}

namespace {

// Every connection is a descriptor: takes the hard limit as the soft one, and says so when even
// that cannot hold the connection limits (accepts would then fail with EMFILE before any
// eviction could make room). (The systemd unit's LimitNOFILE sets both limits, so no call is
// made there: its system call filter forbids setrlimit.)
void check_descriptor_limit(const ServerConfig& config) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &limit);
  }
  constexpr std::size_t kOtherDescriptors = 256;  // HSM sessions, logs, listeners, threads
  std::size_t needed = config.max_connections + config.admin_max_connections + kOtherDescriptors;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    spdlog::warn(
        "the descriptor limit ({}) is below max_connections + admin_max_connections + {} "
        "({}): raise it (LimitNOFILE=, ulimit -n) or lower max_connections",
        limit.rlim_cur, kOtherDescriptors, needed);
  }
}

}  // namespace

tl::expected<void, std::string> Server::listen() {
  const ServerConfig& config = state_->config;
  check_descriptor_limit(config);
  auto acceptor = bind(state_->main_context(), config.listen);
  if (!acceptor)
    return tl::unexpected(acceptor.error());
  state_->acceptor.emplace(std::move(*acceptor));
  auto admin = bind(state_->main_context(), config.admin_listen);
  if (!admin)
    return tl::unexpected(admin.error());
  state_->admin_acceptor.emplace(std::move(*admin));
  state_->accept_pause.emplace(state_->main_context());
  state_->admin_accept_pause.emplace(state_->main_context());
  return {};
}

std::uint16_t Server::port() const {
  return state_->acceptor->local_endpoint().port();
}
std::uint16_t Server::admin_port() const {
  return state_->admin_acceptor->local_endpoint().port();
}

void Server::run() {
  State& state = *state_;
  accept_https(state);
  accept_admin(state);
  for (auto& context : state.contexts) {
    state.threads.emplace_back([&context] { context->run(); });
  }
  spdlog::info("serving XKS on {}:{} and admin on {}:{} with {} I/O threads",
               state.config.listen.host, port(), state.config.admin_listen.host, admin_port(),
               state.contexts.size());

  std::unique_lock lock(state.mutex);
  state.stop_requested.wait(lock, [&state] { return state.stopping; });
  lock.unlock();

  // Stop accepting, answer what is in flight (bounded), then stop the I/O threads.
  state.sessions.draining = true;
  std::promise<void> closed;
  net::post(state.main_context(), [&state, &closed] {
    boost::system::error_code ignored;
    state.acceptor->close(ignored);
    state.admin_acceptor->close(ignored);
    state.accept_pause->cancel();
    state.admin_accept_pause->cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  // Every connection says its protocol's goodbye (HTTP/2 GOAWAY; HTTP/1.1 answers carry
  // Connection: close) and closes once its requests are answered.
  state.sessions.connections.drain_all();
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((state.sessions.requests_in_flight > 0 || state.sessions.connections.open() > 0) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& context : state.contexts)
    context->stop();
  for (auto& thread : state.threads)
    thread.join();
  state.threads.clear();
  // Counted once the I/O threads are gone: a request read just after the wait above was
  // dispatched too, and its answer will still be posted.
  std::size_t abandoned = state.sessions.requests_in_flight;
  if (abandoned > 0) {
    // A request is still with the application (a hung HSM call) and will post its answer to
    // these contexts: keep them.
    spdlog::warn("{} requests still unanswered after 5 s; exiting without them", abandoned);
    for (auto& context : state.contexts)
      (void)context.release();
  }
  spdlog::info("stopped");
}

void Server::stop() {
  std::lock_guard lock(state_->mutex);
  state_->stopping = true;
  state_->stop_requested.notify_all();
}

}  // namespace xks::proxy
