// A small Prometheus metrics module (prometheus-cpp is not packaged on Debian 12): counters,
// gauges and histograms with labels, and the text exposition format. Families are registered
// and label sets resolved at start-up; the request path only touches the returned metric, whose
// updates are relaxed atomics — no lock, no lookup.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xks::proxy::metrics {

class Counter {
 public:
  void inc(double by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<double> value_{0};  // own cache line: threads do not share it
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::span<const double> upper_bounds);
  void observe(double value);

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // per upper bound, then +Inf
    double sum = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, the last is +Inf
  std::atomic<double> sum_{0};
};

enum class Type { kCounter, kGauge, kHistogram };

template <typename Metric>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  // The metric with these label values, created on first use. Takes a lock: resolve once and
  // keep the reference (it stays valid for the family's life).
  Metric& labels(std::vector<std::string> values);
  // Drops a child that no longer describes anything (a removed credential's age): it is no
  // longer exposed, and references to it must not be used again.
  void remove(const std::vector<std::string>& values);

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls `visit(values, metric)` for every child, in label order.
  template <typename Visitor>
  void each(Visitor visit) const {
    std::lock_guard lock(mutex_);
    for (const auto& [values, metric] : children_)
      visit(values, *metric);
  }

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

class Registry {
 public:
  Family<Counter>& counter(std::string name, std::string help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(std::string name, std::string help,
                       std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(std::string name, std::string help,
                               std::vector<std::string> label_names, std::vector<double> bounds);

  // Runs before each scrape: for gauges that mirror state kept elsewhere (sessions, queues).
  void on_scrape(std::function<void()> refresh);

  // Prometheus text exposition format 0.0.4.
  std::string serialize() const;

 private:
  struct Entry {
    Type type;
    std::unique_ptr<Family<Counter>> counters;
    std::unique_ptr<Family<Gauge>> gauges;
    std::unique_ptr<Family<Histogram>> histograms;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> families_;
  std::vector<std::function<void()>> refreshers_;
};

// Label values and HELP text escaped as the text format requires.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);
std::string format_value(double value);

}  // namespace xks::proxy::metrics
