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
#include "schedule.h"
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
