// What a run measured: per phase (by the time each request was due) a precise latency
// histogram and the outcome counts; per second (by the time each answer came) the rate, the
// errors and a coarse histogram for the charts. One Recorder per worker thread, merged at the
// end; its mutex is only ever contended by the once-a-second live line.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "latency_histogram.h"
#include "workload.h"

namespace xks::load {

using Clock = std::chrono::steady_clock;

struct OutcomeCount {
  OutcomeKind kind = OutcomeKind::kOk;
  std::uint64_t count = 0;
};

struct PhaseStats {
  LatencyHistogram latency{8};
  std::map<std::string, OutcomeCount> outcomes;  // by label
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  double error_rate() const {
    return requests ? static_cast<double>(errors) / static_cast<double>(requests) : 0;
  }
  void merge(const PhaseStats& other);
};

struct SecondStats {
  LatencyHistogram latency{5};
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  void merge(const SecondStats& other);
};

struct RunStats {
  std::vector<PhaseStats> phases;
  std::vector<SecondStats> seconds;
  std::uint64_t connections_opened = 0;
  void merge(const RunStats& other);
};

class Recorder {
 public:
  // `phase_starts`: each phase's start in seconds from `start`, ascending, the first 0.
  Recorder(Clock::time_point start, std::vector<double> phase_starts, std::size_t seconds);

  // A request due at `due` (sent then, or queued behind earlier ones) answered at `done`.
  void record(Clock::time_point due, Clock::time_point done, const Outcome& outcome);
  // A failure with no meaningful latency (a connection that could not be opened).
  void record_failure(Clock::time_point due, const Outcome& outcome);
  void connection_opened();

  // Adds this recorder's figures for second `second` into `into`.
  void add_second(std::size_t second, SecondStats& into) const;
  RunStats take();

 private:
  std::size_t phase_of(Clock::time_point due) const;
  SecondStats* second_of(Clock::time_point done);
  void count(PhaseStats& phase, const Outcome& outcome);

  Clock::time_point start_;
  std::vector<Clock::duration> phase_starts_;
  mutable std::mutex mutex_;
  RunStats stats_;
};

}  // namespace xks::load
