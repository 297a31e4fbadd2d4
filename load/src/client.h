// The load engine: TLS connections speaking HTTP/1.1 or HTTP/2 (nghttp2), driven by C++20
// coroutines on one Asio io_context per worker thread, taking their send times from a shared
// Schedule (closed loop: as fast as answers come; open loop: a fixed arrival rate, with every
// latency counted from the time the request was due).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "recorder.h"
#include "workload.h"

namespace xks::load {

struct ClientOptions {
  Target target;
  std::string ca_file;  // empty: the system's trust store
  std::string client_certificate;
  std::string client_key;
  bool http2 = false;
  unsigned connections = 8;
  unsigned streams = 1;  // concurrent requests per HTTP/2 connection
  unsigned threads = 1;
  bool new_connection_per_request = false;
  double timeout_seconds = 5;
  bool verify = false;
};

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

// Runs the load until the schedule is over and every answer is in; `recorders` holds one
// Recorder per worker thread. An error when the run cannot start (target, TLS files).
tl::expected<void, std::string> run_load(const ClientOptions& options, const WorkloadMix& mix,
                                         std::shared_ptr<const std::vector<SealedRecord>> sealed,
                                         Schedule& schedule,
                                         std::vector<std::unique_ptr<Recorder>>& recorders);

// Encrypts `per_key` fresh plaintexts under each key of the mix on one connection, for the
// run's decrypts to replay. An error names the first failure.
tl::expected<std::vector<SealedRecord>, std::string> warm_up(const ClientOptions& options,
                                                             const WorkloadMix& mix,
                                                             unsigned per_key);

}  // namespace xks::load
