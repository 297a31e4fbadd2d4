// The load engine's workers: connections per worker thread, requests as the schedule says.
#include "client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>
#include <thread>

#include "connection.h"
#include "watchdog.h"

namespace xks::load {

namespace {

using net::use_awaitable;

constexpr auto kReconnectPause = std::chrono::milliseconds(100);

// Opens a connection of the run's protocol, watched from the start.
awaitable<std::shared_ptr<Connection>> open_connection(const RunContext& run, Watchdog& watchdog) {
  auto executor = co_await net::this_coro::executor;
  std::shared_ptr<Connection> connection = run.options.http2 ? make_http2_connection(executor, run)
                                                             : make_http1_connection(executor, run);
  watchdog.watch(connection);
  co_await connection->open(run);
  connection->started();
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
  PreparedRequest request;
  while (connection.usable()) {
    auto due = schedule.next();
    if (!due)
      co_return;
    co_await sleep_until(*due);
    worker.factory.make(worker.factory.pick(), request);
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
  PreparedRequest request;
  while (auto due = schedule.next()) {
    co_await sleep_until(*due);
    worker.factory.make(worker.factory.pick(), request);
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

}  // namespace

tl::expected<void, std::string> run_load(const ClientOptions& options, const WorkloadMix& mix,
                                         std::shared_ptr<const std::vector<SealedRecord>> sealed,
                                         Schedule& schedule,
                                         std::vector<std::unique_ptr<Recorder>>& recorders) {
  auto run = prepare_run(options);
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
  auto run = prepare_run(options);
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
