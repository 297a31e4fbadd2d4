// Metrics and their text exposition.
#include "xks/proxy/ops/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace xks::proxy::metrics {

Histogram::Histogram(std::span<const double> upper_bounds)
    : bounds_(upper_bounds.begin(), upper_bounds.end()),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::observe(double value) {
  std::size_t bucket = static_cast<std::size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot out;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    out.cumulative.push_back(running);
  }
  out.sum = sum_.load(std::memory_order_relaxed);
  return out;
}

template <typename Metric>
Metric& Family<Metric>::labels(std::vector<std::string> values) {
  std::lock_guard lock(mutex_);
  auto& slot = children_[std::move(values)];
  if (!slot) {
    if constexpr (std::is_same_v<Metric, Histogram>) {
      slot = std::make_unique<Histogram>(bounds_);
    } else {
      slot = std::make_unique<Metric>();
    }
  }
  return *slot;
}

template <typename Metric>
void Family<Metric>::remove(const std::vector<std::string>& values) {
  std::lock_guard lock(mutex_);
  children_.erase(values);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Family<Counter>& Registry::counter(std::string name, std::string help,
                                   std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  auto family =
      std::make_unique<Family<Counter>>(std::move(name), std::move(help), std::move(label_names));
  Family<Counter>& result = *family;
  families_.push_back({Type::kCounter, std::move(family), nullptr, nullptr});
  return result;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help,
                               std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  auto family =
      std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(label_names));
  Family<Gauge>& result = *family;
  families_.push_back({Type::kGauge, nullptr, std::move(family), nullptr});
  return result;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds) {
  std::lock_guard lock(mutex_);
  std::sort(bounds.begin(), bounds.end());
  auto family = std::make_unique<Family<Histogram>>(std::move(name), std::move(help),
                                                    std::move(label_names), std::move(bounds));
  Family<Histogram>& result = *family;
  families_.push_back({Type::kHistogram, nullptr, nullptr, std::move(family)});
  return result;
}

void Registry::on_scrape(std::function<void()> refresh) {
  std::lock_guard lock(mutex_);
  refreshers_.push_back(std::move(refresh));
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value))
    return "NaN";
  if (std::isinf(value))
    return value > 0 ? "+Inf" : "-Inf";
  // Plain decimals for the everyday range (bucket bounds like 0.0001 read as written).
  double magnitude = std::fabs(value);
  auto format = magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e15)
                    ? std::chars_format::fixed
                    : std::chars_format::general;
  char buffer[64];
  auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value, format);
  return error == std::errc{} ? std::string(buffer, end) : "NaN";
}

namespace {

// name{a="x",b="y"} with an optional extra label (le for histogram buckets).
std::string series(std::string_view name, const std::vector<std::string>& label_names,
                   const std::vector<std::string>& values, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  std::string out(name);
  bool any = !label_names.empty() || !extra_name.empty();
  if (!any)
    return out;
  out.push_back('{');
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    if (i > 0)
      out.push_back(',');
    out += label_names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    if (!label_names.empty())
      out.push_back(',');
    out += std::string(extra_name) + "=\"" + std::string(extra_value) + "\"";
  }
  out.push_back('}');
  return out;
}

template <typename Metric>
void header(std::string& out, const Family<Metric>& family, std::string_view type) {
  out += "# HELP " + family.name() + " " + escape_help(family.help()) + "\n";
  out += "# TYPE " + family.name() + " " + std::string(type) + "\n";
}

}  // namespace

std::string Registry::serialize() const {
  std::lock_guard lock(mutex_);
  for (const auto& refresh : refreshers_)
    refresh();
  std::string out;
  for (const Entry& entry : families_) {
    switch (entry.type) {
      case Type::kCounter:
        header(out, *entry.counters, "counter");
        entry.counters->each([&](const std::vector<std::string>& values, const Counter& metric) {
          out += series(entry.counters->name(), entry.counters->label_names(), values) + " " +
                 format_value(metric.value()) + "\n";
        });
        break;
      case Type::kGauge:
        header(out, *entry.gauges, "gauge");
        entry.gauges->each([&](const std::vector<std::string>& values, const Gauge& metric) {
          out += series(entry.gauges->name(), entry.gauges->label_names(), values) + " " +
                 format_value(metric.value()) + "\n";
        });
        break;
      case Type::kHistogram: {
        const Family<Histogram>& family = *entry.histograms;
        header(out, family, "histogram");
        family.each([&](const std::vector<std::string>& values, const Histogram& metric) {
          Histogram::Snapshot snapshot = metric.snapshot();
          const auto& bounds = metric.upper_bounds();
          for (std::size_t i = 0; i <= bounds.size(); ++i) {
            std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
            out += series(family.name() + "_bucket", family.label_names(), values, "le", le) + " " +
                   std::to_string(snapshot.cumulative[i]) + "\n";
          }
          out += series(family.name() + "_sum", family.label_names(), values) + " " +
                 format_value(snapshot.sum) + "\n";
          out += series(family.name() + "_count", family.label_names(), values) + " " +
                 std::to_string(snapshot.cumulative.back()) + "\n";
        });
        break;
      }
    }
  }
  return out;
}

}  // namespace xks::proxy::metrics
