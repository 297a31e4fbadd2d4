// The circuit breaker's state machine.
#include "xks/hsm/circuit_breaker.h"

#include <algorithm>
#include <utility>

namespace xks::hsm {

std::string_view circuit_state_name(CircuitState state) {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kHalfOpen:
      return "half_open";
    case CircuitState::kOpen:
      return "open";
  }
  return "open";
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, Now now)
    : options_(options), now_(std::move(now)), open_for_(options.open_for) {}

void CircuitBreaker::on_change(OnChange listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

bool CircuitBreaker::allow() const {
  std::lock_guard lock(mutex_);
  return state_ == CircuitState::kClosed;
}

CircuitState CircuitBreaker::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

CircuitBreaker::Bucket& CircuitBreaker::bucket(Clock::time_point now) {
  std::int64_t slice = std::max<std::int64_t>(1, options_.window.count() / std::int64_t{kBuckets});
  std::int64_t slot =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() / slice;
  Bucket& current = buckets_[static_cast<std::size_t>(slot) % kBuckets];
  if (current.slot != slot)
    current = Bucket{slot, 0, 0};
  return current;
}

void CircuitBreaker::record_success() {
  std::lock_guard lock(mutex_);
  if (state_ != CircuitState::kClosed)
    return;  // only the probe decides outside the closed state
  consecutive_ = 0;
  ++bucket(now_()).calls;
}

void CircuitBreaker::record_failure() {
  std::unique_lock lock(mutex_);
  if (state_ != CircuitState::kClosed)
    return;
  auto now = now_();
  Bucket& current = bucket(now);
  ++current.calls;
  ++current.failures;
  ++consecutive_;
  // The window: the buckets of its last kBuckets slices.
  unsigned calls = 0;
  unsigned failures = 0;
  for (const Bucket& counted : buckets_) {
    if (counted.slot > current.slot - static_cast<std::int64_t>(kBuckets)) {
      calls += counted.calls;
      failures += counted.failures;
    }
  }
  bool too_many_in_a_row = consecutive_ >= options_.consecutive_failures;
  bool too_many_in_window =
      calls >= options_.minimum_calls &&
      static_cast<double>(failures) >= options_.failure_ratio * static_cast<double>(calls);
  if (too_many_in_a_row || too_many_in_window) {
    opened_at_ = now;
    open_for_ = options_.open_for;
    move_to(CircuitState::kOpen, lock);
  }
}

std::optional<CircuitBreaker::Clock::time_point> CircuitBreaker::probe_at() const {
  std::lock_guard lock(mutex_);
  if (state_ != CircuitState::kOpen)
    return std::nullopt;
  return opened_at_ + open_for_;
}

bool CircuitBreaker::begin_probe() {
  std::unique_lock lock(mutex_);
  if (state_ != CircuitState::kOpen || now_() < opened_at_ + open_for_)
    return false;
  move_to(CircuitState::kHalfOpen, lock);
  return true;
}

void CircuitBreaker::end_probe(bool succeeded) {
  std::unique_lock lock(mutex_);
  if (state_ != CircuitState::kHalfOpen)
    return;
  if (succeeded) {
    reset_counts();
    open_for_ = options_.open_for;
    move_to(CircuitState::kClosed, lock);
  } else {
    opened_at_ = now_();
    open_for_ = std::min(open_for_ * 2, options_.max_open_for);
    move_to(CircuitState::kOpen, lock);
  }
}

void CircuitBreaker::reset_counts() {
  consecutive_ = 0;
  buckets_.fill(Bucket{});
}

void CircuitBreaker::move_to(CircuitState to, std::unique_lock<std::mutex>& lock) {
  CircuitState from = std::exchange(state_, to);
  if (to == CircuitState::kOpen)
    reset_counts();
  OnChange listener = listener_;
  lock.unlock();
  if (listener)
    listener(from, to);
}

}  // namespace xks::hsm
