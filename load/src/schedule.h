// When each request is due: closed loop (as fast as answers come) or open loop (a fixed arrival
// rate after a linear ramp), bounded by a duration and optionally a request count. Shared by
// every worker thread of a run.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>

#include "recorder.h"

namespace xks::load {

class Schedule {
 public:
  // `rate` 0: closed loop. Open loop ramps the rate up linearly over `ramp_seconds`; a closed
  // loop starts its connections evenly over that time. `max_requests` 0: no count bound.
  Schedule(Clock::time_point start, double seconds, double rate, double ramp_seconds,
           std::uint64_t max_requests);

  // When the next request is due, or nothing once the run is over.
  std::optional<Clock::time_point> next();
  bool over() const;
  // When the `index`-th of `count` connections starts.
  Clock::time_point connection_start(unsigned index, unsigned count) const;
  Clock::time_point start() const { return start_; }
  Clock::time_point end() const { return end_; }
  // Open loop: requests that were due before the end but never sent (the load fell behind).
  std::uint64_t unsent() const;

 private:
  Clock::time_point due_time(std::uint64_t ticket) const;
  std::uint64_t due_before(double seconds) const;

  Clock::time_point start_;
  Clock::time_point end_;
  double seconds_;
  double rate_;
  double ramp_seconds_;
  std::uint64_t max_requests_;
  std::atomic<std::uint64_t> tickets_{0};
  std::atomic<bool> exhausted_{false};  // a ticket past the end or the count was drawn
};

}  // namespace xks::load
