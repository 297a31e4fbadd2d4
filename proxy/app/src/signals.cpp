// Signals handled on a thread of their own.
#include "xks/proxy/app/signals.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <thread>

namespace xks::proxy {

namespace net = boost::asio;

struct SignalHandling::State {
  State(std::function<void()> stop, std::function<void()> hangup)
      : on_stop(std::move(stop)), on_hangup(std::move(hangup)) {}

  void wait() {
    signals.async_wait([this](boost::system::error_code error, int signal) {
      if (error)
        return;
      if (signal == SIGHUP) {
        spdlog::info("SIGHUP: reopening the audit log, reloading the configuration");
        on_hangup();
        return wait();
      }
      spdlog::info("signal {}: draining", signal);
      on_stop();
    });
  }

  std::function<void()> on_stop;
  std::function<void()> on_hangup;
  net::io_context context{1};
  net::signal_set signals{context, SIGTERM, SIGINT, SIGHUP};
  std::thread thread;
};

SignalHandling::SignalHandling(std::function<void()> on_stop, std::function<void()> on_hangup)
    : state_(std::make_unique<State>(std::move(on_stop), std::move(on_hangup))) {
  state_->wait();
  state_->thread = std::thread([state = state_.get()] { state->context.run(); });
}

SignalHandling::~SignalHandling() {
  state_->context.stop();
  state_->thread.join();
}

}  // namespace xks::proxy
