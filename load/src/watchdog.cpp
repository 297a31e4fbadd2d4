// The per-thread deadline watchdog.
#include "watchdog.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace xks::load {

namespace {

constexpr auto kWatchdogTick = std::chrono::milliseconds(20);

}  // namespace

awaitable<void> Watchdog::run() {
  net::steady_timer tick(co_await net::this_coro::executor);
  while (working_ > 0) {
    tick.expires_after(kWatchdogTick);
    co_await tick.async_wait(net::as_tuple(net::use_awaitable));
    auto now = Clock::now();
    std::erase_if(watched_, [](const auto& weak) { return weak.expired(); });
    for (const auto& weak : watched_) {
      if (auto connection = weak.lock())
        connection->expire(now);
    }
  }
}

}  // namespace xks::load
