// The request schedule.
#include "schedule.h"

#include <algorithm>
#include <cmath>

namespace xks::load {

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
  // Every counted request handed out is over too: no connection is opened for none.
  return exhausted_.load(std::memory_order_relaxed) || Clock::now() >= end_ ||
         (max_requests_ != 0 && tickets_.load(std::memory_order_relaxed) >= max_requests_);
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

}  // namespace xks::load
