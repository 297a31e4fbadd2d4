// Per-thread measurement of a run.
#include "recorder.h"

#include <algorithm>

namespace xks::load {

void PhaseStats::merge(const PhaseStats& other) {
  latency.merge(other.latency);
  for (const auto& [label, outcome] : other.outcomes) {
    auto& mine = outcomes[label];
    mine.kind = outcome.kind;
    mine.count += outcome.count;
  }
  requests += other.requests;
  errors += other.errors;
}

void SecondStats::merge(const SecondStats& other) {
  latency.merge(other.latency);
  requests += other.requests;
  errors += other.errors;
}

void RunStats::merge(const RunStats& other) {
  phases.resize(std::max(phases.size(), other.phases.size()));
  for (std::size_t i = 0; i < other.phases.size(); ++i)
    phases[i].merge(other.phases[i]);
  seconds.resize(std::max(seconds.size(), other.seconds.size()));
  for (std::size_t i = 0; i < other.seconds.size(); ++i)
    seconds[i].merge(other.seconds[i]);
  connections_opened += other.connections_opened;
}

Recorder::Recorder(Clock::time_point start, std::vector<double> phase_starts, std::size_t seconds)
    : start_(start) {
  for (double at : phase_starts) {
    phase_starts_.push_back(
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at)));
  }
  stats_.phases.resize(phase_starts_.size());
  stats_.seconds.resize(seconds);
}

std::size_t Recorder::phase_of(Clock::time_point due) const {
  auto offset = due - start_;
  auto after = std::upper_bound(phase_starts_.begin(), phase_starts_.end(), offset);
  return after == phase_starts_.begin()
             ? 0
             : static_cast<std::size_t>(after - phase_starts_.begin()) - 1;
}

// Answers after the last planned second (draining in-flight requests) count in the last one.
SecondStats* Recorder::second_of(Clock::time_point done) {
  if (stats_.seconds.empty())
    return nullptr;
  auto second = std::chrono::duration_cast<std::chrono::seconds>(done - start_).count();
  auto index =
      std::clamp<std::int64_t>(second, 0, static_cast<std::int64_t>(stats_.seconds.size()) - 1);
  return &stats_.seconds[static_cast<std::size_t>(index)];
}

void Recorder::count(PhaseStats& phase, const Outcome& outcome) {
  auto& counted = phase.outcomes[outcome.label];
  counted.kind = outcome.kind;
  ++counted.count;
  ++phase.requests;
  if (outcome.kind != OutcomeKind::kOk)
    ++phase.errors;
}

void Recorder::record(Clock::time_point due, Clock::time_point done, const Outcome& outcome) {
  auto latency = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::max(done - due, Clock::duration{}))
          .count());
  std::lock_guard lock(mutex_);
  PhaseStats& phase = stats_.phases[phase_of(due)];
  count(phase, outcome);
  phase.latency.record(latency);
  if (SecondStats* second = second_of(done)) {
    second->latency.record(latency);
    ++second->requests;
    if (outcome.kind != OutcomeKind::kOk)
      ++second->errors;
  }
}

void Recorder::record_failure(Clock::time_point due, const Outcome& outcome) {
  std::lock_guard lock(mutex_);
  count(stats_.phases[phase_of(due)], outcome);
  if (SecondStats* second = second_of(Clock::now())) {
    ++second->requests;
    ++second->errors;
  }
}

void Recorder::connection_opened() {
  std::lock_guard lock(mutex_);
  ++stats_.connections_opened;
}

void Recorder::add_second(std::size_t second, SecondStats& into) const {
  std::lock_guard lock(mutex_);
  if (second < stats_.seconds.size())
    into.merge(stats_.seconds[second]);
}

RunStats Recorder::take() {
  std::lock_guard lock(mutex_);
  return std::move(stats_);
}

}  // namespace xks::load
