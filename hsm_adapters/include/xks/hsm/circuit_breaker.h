// A circuit breaker for one HSM backend (DESIGN: circuit breakers). Closed, calls flow and
// their results are counted; it opens after `consecutive_failures` failures in a row, or when
// at least `failure_ratio` of at least `minimum_calls` calls in the last `window` failed. Open,
// no call goes to the backend (callers fail fast or go elsewhere) until a cool-down has passed;
// then it is half-open: one probe (the health key's encrypt and decrypt) decides, closing it on
// success and reopening it on failure with a cool-down twice as long, up to `max_open_for`.
// A failure is the backend not answering: a device or session error, no session before the
// deadline, or a deadline passed during the call. A bad tag or a refused key is an answer.
// Thread-safe; the clock is injected for tests.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>

namespace xks::hsm {

struct CircuitBreakerOptions {
  unsigned consecutive_failures = 3;  // a hung HSM gets few calls (they go elsewhere)
  double failure_ratio = 0.5;
  unsigned minimum_calls = 20;
  std::chrono::milliseconds window{10000};
  std::chrono::milliseconds open_for{200};      // the first cool-down
  std::chrono::milliseconds max_open_for{500};  // short: serving resumes soon after an outage

  bool operator==(const CircuitBreakerOptions&) const = default;
};

enum class CircuitState : std::uint8_t { kClosed, kHalfOpen, kOpen };

std::string_view circuit_state_name(CircuitState state);  // closed | half_open | open

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  // Called after each change of state, without the breaker's lock held.
  using OnChange = std::function<void(CircuitState from, CircuitState to)>;

  explicit CircuitBreaker(CircuitBreakerOptions options, Now now = Clock::now);

  void on_change(OnChange listener);

  // Whether a call may go to the backend now: only when closed.
  bool allow() const;
  void record_success();
  void record_failure();

  // When an open circuit may be probed (now or later); nothing when it is not open.
  std::optional<Clock::time_point> probe_at() const;
  // Open and past its cool-down: becomes half-open and returns true (the caller probes).
  bool begin_probe();
  // The probe's result: closed again, or open with a longer cool-down.
  void end_probe(bool succeeded);

  CircuitState state() const;

 private:
  static constexpr std::size_t kBuckets = 10;
  struct Bucket {
    std::int64_t slot = -1;  // which window slice it counts (time / (window / kBuckets))
    unsigned calls = 0;
    unsigned failures = 0;
  };

  Bucket& bucket(Clock::time_point now);
  void move_to(CircuitState to, std::unique_lock<std::mutex>& lock);
  void reset_counts();

  CircuitBreakerOptions options_;
  Now now_;
  mutable std::mutex mutex_;
  OnChange listener_;
  CircuitState state_ = CircuitState::kClosed;
  unsigned consecutive_ = 0;
  std::array<Bucket, kBuckets> buckets_{};
  std::chrono::milliseconds open_for_;
  Clock::time_point opened_at_{};
};

}  // namespace xks::hsm
