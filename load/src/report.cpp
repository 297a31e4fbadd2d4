// Text, JSON and HTML (inline SVG) renderings of a run.
#include "report.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace xks::load {

namespace {

struct Quantile {
  const char* name;
  const char* key;
  double q;
};
constexpr Quantile kQuantiles[] = {{"p50", "p50", 0.5},
                                   {"p90", "p90", 0.9},
                                   {"p99", "p99", 0.99},
                                   {"p99.9", "p999", 0.999},
                                   {"p99.99", "p9999", 0.9999}};

double ms(std::uint64_t nanoseconds) {
  return static_cast<double>(nanoseconds) / 1e6;
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// How long phase `index` actually ran (a count-bounded run may end early).
double phase_seconds(const RunReport& report, std::size_t index) {
  const PhasePlan& phase = report.phases[index];
  return std::clamp(report.elapsed_seconds - phase.start_seconds, 0.0, phase.seconds);
}

double phase_rate(const RunReport& report, std::size_t index) {
  double seconds = phase_seconds(report, index);
  return seconds > 0 ? static_cast<double>(report.stats.phases[index].requests) / seconds : 0;
}

std::string_view kind_name(OutcomeKind kind) {
  switch (kind) {
    case OutcomeKind::kOk:
      return "ok";
    case OutcomeKind::kHttpError:
      return "http";
    case OutcomeKind::kTransport:
      return "transport";
    case OutcomeKind::kVerify:
      return "verify";
  }
  return "?";
}

// Errors grouped three ways: by XKS errorName, by HTTP status, by transport or verify failure.
struct ErrorGroups {
  std::map<std::string, std::uint64_t> error_names, http_statuses, transport, verify;
};

ErrorGroups group_errors(const PhaseStats& stats) {
  ErrorGroups groups;
  for (const auto& [label, outcome] : stats.outcomes) {
    switch (outcome.kind) {
      case OutcomeKind::kOk:
        break;
      case OutcomeKind::kHttpError: {
        auto space = label.find(' ');
        groups.http_statuses[label.substr(0, space)] += outcome.count;
        if (space != std::string::npos)
          groups.error_names[label.substr(space + 1)] += outcome.count;
        break;
      }
      case OutcomeKind::kTransport:
        groups.transport[label.substr(label.find(':') + 2)] += outcome.count;
        break;
      case OutcomeKind::kVerify:
        groups.verify[label.substr(label.find(':') + 2)] += outcome.count;
        break;
    }
  }
  return groups;
}

boost::json::object latency_json(const LatencyHistogram& latency) {
  boost::json::object out;
  for (const Quantile& quantile : kQuantiles)
    out[quantile.key] = ms(latency.quantile(quantile.q));
  out["max"] = ms(latency.max());
  return out;
}

// ---- SVG charts -------------------------------------------------------------------------

struct Series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;
};

struct Tick {
  double at;
  std::string label;
};

// Round tick steps (1, 2, 5 x 10^n) from 0 to the first tick at or above `max`, so that an
// axis ending at the last tick covers every value up to `max`.
std::vector<Tick> ticks_up_to(double max, int target_count) {
  if (max <= 0)
    max = 1;
  double rough = max / target_count;
  double magnitude = std::pow(10, std::floor(std::log10(rough)));
  double step = magnitude;
  for (double factor : {1.0, 2.0, 5.0, 10.0}) {
    step = factor * magnitude;
    if (step >= rough)
      break;
  }
  int decimals = step < 1 ? static_cast<int>(std::ceil(-std::log10(step))) : 0;
  std::vector<Tick> ticks;
  for (int i = 0;; ++i) {
    double at = i * step;
    ticks.push_back({at, fixed(at, decimals)});
    if (at >= max)
      break;
  }
  return ticks;
}

// Text width at the charts' 11 px sans-serif, generously: for laying out labels and legends.
double text_width(const std::string& text) {
  return 7 * static_cast<double>(text.size());
}

// An SVG line chart. The plot area is the rect of class "plot-area": the axes end at their
// last ticks, which cover every point, so every series (class "series") lies inside it. Phase
// markers' labels take the first of a few rows where they overlap no other; the legend (class
// "legend") wraps into rows below the chart, which grows to hold them.
std::string line_chart(const std::string& title, const std::string& x_label,
                       const std::string& y_label, const std::vector<Series>& series,
                       std::vector<Tick> x_ticks, const std::vector<Tick>& markers) {
  // kRight leaves room for half of the last x tick's label.
  constexpr double kWidth = 860, kHeight = 300, kLeft = 70, kRight = 30, kTop = 30, kBottom = 50;
  constexpr double kLegendRow = 16, kMarkerRow = 12;
  double x_max = 0, y_max = 0;
  for (const Series& s : series) {
    for (auto [x, y] : s.points) {
      x_max = std::max(x_max, x);
      y_max = std::max(y_max, y);
    }
  }
  if (x_ticks.empty())
    x_ticks = ticks_up_to(x_max, 10);
  x_max = std::max(x_max, x_ticks.back().at);
  std::vector<Tick> y_ticks = ticks_up_to(y_max * 1.05, 6);
  y_max = y_ticks.back().at;
  if (x_max <= 0)
    x_max = 1;
  auto px = [&](double x) { return kLeft + x / x_max * (kWidth - kLeft - kRight); };
  auto py = [&](double y) { return kHeight - kBottom - y / y_max * (kHeight - kTop - kBottom); };

  // The legend's rows, laid out first: they decide the chart's height.
  struct LegendEntry {
    double x, y;
  };
  std::vector<LegendEntry> legend;
  double legend_x = kLeft, legend_y = kHeight + 4;
  for (const Series& s : series) {
    double width = 14 + text_width(s.name) + 16;
    if (legend_x > kLeft && legend_x + width > kWidth - kRight) {
      legend_x = kLeft;
      legend_y += kLegendRow;
    }
    legend.push_back({legend_x, legend_y});
    legend_x += width;
  }
  double height = series.empty() ? kHeight : legend_y + kLegendRow;

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
      << "<text x=\"" << kLeft << "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">"
      << html_escape(title) << "</text>\n"
      << "<rect class=\"plot-area\" x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\""
      << kWidth - kLeft - kRight << "\" height=\"" << kHeight - kTop - kBottom
      << "\" fill=\"none\" stroke=\"#ccc\"/>\n";
  for (const Tick& tick : y_ticks) {
    svg << "<line x1=\"" << kLeft << "\" x2=\"" << kWidth - kRight << "\" y1=\"" << py(tick.at)
        << "\" y2=\"" << py(tick.at) << "\" stroke=\"#ddd\"/>"
        << "<text x=\"" << kLeft - 5 << "\" y=\"" << py(tick.at) + 4 << "\" text-anchor=\"end\">"
        << tick.label << "</text>\n";
  }
  for (const Tick& tick : x_ticks) {
    svg << "<line x1=\"" << px(tick.at) << "\" x2=\"" << px(tick.at) << "\" y1=\"" << kTop
        << "\" y2=\"" << kHeight - kBottom << "\" stroke=\"#eee\"/>"
        << "<text x=\"" << px(tick.at) << "\" y=\"" << kHeight - kBottom + 15
        << "\" text-anchor=\"middle\">" << html_escape(tick.label) << "</text>\n";
  }
  std::vector<double> row_ends;  // where each row of marker labels is taken up to
  for (const Tick& marker : markers) {
    // Right of its line, or left of it where it would run past the plot's right edge.
    double width = text_width(marker.label);
    bool left = px(marker.at) + 3 + width > kWidth - kRight;
    double start = left ? px(marker.at) - 3 - width : px(marker.at) + 3;
    std::size_t row = 0;
    while (row < row_ends.size() && row_ends[row] > start)
      ++row;
    if (row == row_ends.size())
      row_ends.push_back(0);
    row_ends[row] = start + width + 4;
    svg << "<line x1=\"" << px(marker.at) << "\" x2=\"" << px(marker.at) << "\" y1=\"" << kTop
        << "\" y2=\"" << kHeight - kBottom << "\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>"
        << "<text class=\"marker\" x=\"" << (left ? px(marker.at) - 3 : start) << "\" y=\""
        << kTop + 10 + kMarkerRow * static_cast<double>(row) << "\" fill=\"#555\""
        << (left ? " text-anchor=\"end\"" : "") << ">" << html_escape(marker.label) << "</text>\n";
  }
  svg << "<text x=\"" << (kLeft + kWidth - kRight) / 2 << "\" y=\"" << kHeight - 12
      << "\" text-anchor=\"middle\">" << html_escape(x_label) << "</text>"
      << "<text x=\"14\" y=\"" << (kTop + kHeight - kBottom) / 2
      << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 " << (kTop + kHeight - kBottom) / 2
      << ")\">" << html_escape(y_label) << "</text>\n";
  for (std::size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    svg << "<polyline class=\"series\" fill=\"none\" stroke-width=\"1.5\" stroke=\"" << s.color
        << "\" points=\"";
    for (auto [x, y] : s.points)
      svg << fixed(px(x), 1) << "," << fixed(py(y), 1) << " ";
    svg << "\"/>\n<rect x=\"" << legend[i].x << "\" y=\"" << legend[i].y + 5
        << "\" width=\"10\" height=\"3\" fill=\"" << s.color << "\"/><text class=\"legend\" x=\""
        << legend[i].x + 14 << "\" y=\"" << legend[i].y + 10 << "\">" << html_escape(s.name)
        << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// Latency by percentile, x = log10(1 / (1 - q)): 0 = p0, 1 = p90, 2 = p99, ... 5 = p99.999.
Series spectrum(const std::string& name, const std::string& color,
                const LatencyHistogram& latency) {
  Series series{name, color, {}};
  if (latency.count() == 0)
    return series;
  for (int step = 0; step <= 50; ++step) {
    double x = step / 10.0;
    double q = 1 - std::pow(10, -x);
    series.points.emplace_back(x, ms(latency.quantile(q)));
    if (q * static_cast<double>(latency.count()) >= static_cast<double>(latency.count()) - 1)
      break;  // beyond the last sample every quantile is the maximum
  }
  return series;
}

std::vector<Tick> phase_markers(const RunReport& report) {
  std::vector<Tick> markers;
  if (report.phases.size() > 1) {
    for (const PhasePlan& phase : report.phases)
      markers.push_back({phase.start_seconds, phase.name});
  }
  return markers;
}

}  // namespace

Totals totals(const RunReport& report) {
  Totals out;
  for (std::size_t i = 0; i < report.phases.size() && i < report.stats.phases.size(); ++i) {
    if (!report.phases[i].in_summary)
      continue;
    out.all.merge(report.stats.phases[i]);
    out.seconds += phase_seconds(report, i);
  }
  return out;
}

std::string live_line(std::size_t second, const SecondStats& stats) {
  return fixed(static_cast<double>(second + 1), 0) + " s: " + std::to_string(stats.requests) +
         " req/s, " + std::to_string(stats.errors) + " errors, p50 " +
         fixed(ms(stats.latency.quantile(0.5)), 2) + " ms, p99 " +
         fixed(ms(stats.latency.quantile(0.99)), 2) + " ms";
}

void print_summary(std::ostream& out, const RunReport& report) {
  Totals total = totals(report);
  const PhaseStats& all = total.all;
  out << "xks-load: " << report.target << ", " << report.description << "\n"
      << all.requests << " requests in " << fixed(total.seconds, 2)
      << " s: " << fixed(total.rate(), 1) << " req/s, " << all.errors << " errors ("
      << fixed(100 * all.error_rate(), 3) << " %), " << report.stats.connections_opened
      << " connections opened\n";
  if (report.unsent > 0)
    out << report.unsent << " requests due before the end were never sent (the load fell behind)\n";
  out << "latency ms:";
  for (const Quantile& quantile : kQuantiles)
    out << "  " << quantile.name << " " << fixed(ms(all.latency.quantile(quantile.q)), 3);
  out << "  max " << fixed(ms(all.latency.max()), 3) << "\n";
  out << "outcomes:\n";
  for (const auto& [label, outcome] : all.outcomes)
    out << "  " << label << ": " << outcome.count << "\n";
  ErrorGroups groups = group_errors(all);
  auto print_group = [&](const char* name, const std::map<std::string, std::uint64_t>& group) {
    if (group.empty())
      return;
    out << "errors by " << name << ":";
    for (const auto& [key, count] : group)
      out << "  " << key << " " << count;
    out << "\n";
  };
  print_group("errorName", groups.error_names);
  print_group("HTTP status", groups.http_statuses);
  print_group("transport failure", groups.transport);
  print_group("verify failure", groups.verify);
  if (report.phases.size() > 1) {
    out << "phases:\n";
    for (std::size_t i = 0; i < report.phases.size(); ++i) {
      const PhasePlan& phase = report.phases[i];
      const PhaseStats& stats = report.stats.phases[i];
      out << "  " << phase.name << " [" << fixed(phase.start_seconds, 1) << " s +"
          << fixed(phase.seconds, 1) << " s]: " << stats.requests << " requests, "
          << fixed(phase_rate(report, i), 1) << " req/s, error rate "
          << fixed(100 * stats.error_rate(), 2) << " %, p50 "
          << fixed(ms(stats.latency.quantile(0.5)), 3) << " ms, p99 "
          << fixed(ms(stats.latency.quantile(0.99)), 3) << " ms, max "
          << fixed(ms(stats.latency.max()), 3) << " ms\n";
    }
  }
}

std::string json_report(const RunReport& report) {
  Totals total = totals(report);
  const PhaseStats& all = total.all;
  boost::json::object out;
  out["target"] = report.target;
  out["description"] = report.description;
  out["started_utc"] = report.started_utc;
  out["requests"] = all.requests;
  out["ok"] = all.requests - all.errors;
  out["errors"] = all.errors;
  out["seconds"] = total.seconds;
  out["rate"] = total.rate();
  out["unsent"] = report.unsent;
  out["connections_opened"] = report.stats.connections_opened;
  out["latency_ms"] = latency_json(all.latency);
  boost::json::array outcomes;
  for (const auto& [label, outcome] : all.outcomes) {
    outcomes.push_back(
        {{"label", label}, {"kind", kind_name(outcome.kind)}, {"count", outcome.count}});
  }
  out["outcomes"] = std::move(outcomes);
  ErrorGroups groups = group_errors(all);
  auto group_json = [](const std::map<std::string, std::uint64_t>& group) {
    boost::json::object object;
    for (const auto& [key, count] : group)
      object[key] = count;
    return object;
  };
  out["errors_by"] = {{"errorName", group_json(groups.error_names)},
                      {"http_status", group_json(groups.http_statuses)},
                      {"transport", group_json(groups.transport)},
                      {"verify", group_json(groups.verify)}};
  boost::json::array phases;
  for (std::size_t i = 0; i < report.phases.size(); ++i) {
    const PhasePlan& phase = report.phases[i];
    const PhaseStats& stats = report.stats.phases[i];
    double seconds = phase_seconds(report, i);
    boost::json::array faults;
    for (const std::string& fault : phase.faults)
      faults.push_back(boost::json::string(fault));
    phases.push_back({{"name", phase.name},
                      {"start_seconds", phase.start_seconds},
                      {"seconds", seconds},
                      {"faults", std::move(faults)},
                      {"in_summary", phase.in_summary},
                      {"requests", stats.requests},
                      {"errors", stats.errors},
                      {"rate", phase_rate(report, i)},
                      {"error_rate", stats.error_rate()},
                      {"errors_by_error_name", group_json(group_errors(stats).error_names)},
                      {"latency_ms", latency_json(stats.latency)}});
  }
  out["phases"] = std::move(phases);
  boost::json::array timeline;
  for (std::size_t second = 0; second < report.stats.seconds.size(); ++second) {
    const SecondStats& stats = report.stats.seconds[second];
    timeline.push_back({{"second", second},
                        {"requests", stats.requests},
                        {"errors", stats.errors},
                        {"p50_ms", ms(stats.latency.quantile(0.5))},
                        {"p99_ms", ms(stats.latency.quantile(0.99))}});
  }
  out["timeline"] = std::move(timeline);
  return boost::json::serialize(out) + "\n";
}

std::string html_report(const RunReport& report) {
  Totals total = totals(report);
  const PhaseStats& all = total.all;
  std::ostringstream html;
  html << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
       << "<title>xks-load report</title><style>"
       << "body{font-family:sans-serif;margin:2em;color:#222}"
       << "table{border-collapse:collapse;margin:1em 0}"
       << "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
       << "th{background:#f3f3f3}td.l,th.l{text-align:left}</style></head><body>\n"
       << "<h1>xks-load report</h1>\n<p>" << html_escape(report.target) << "<br>"
       << html_escape(report.description) << "<br>started " << html_escape(report.started_utc)
       << "</p>\n<table><tr><th>requests</th><th>seconds</th><th>req/s</th><th>errors</th>"
       << "<th>connections opened</th><th>unsent (behind schedule)</th></tr><tr><td>"
       << all.requests << "</td><td>" << fixed(total.seconds, 2) << "</td><td>"
       << fixed(total.rate(), 1) << "</td><td>" << all.errors << "</td><td>"
       << report.stats.connections_opened << "</td><td>" << report.unsent
       << "</td></tr></table>\n<table><tr>";
  for (const Quantile& quantile : kQuantiles)
    html << "<th>" << quantile.name << " ms</th>";
  html << "<th>max ms</th></tr><tr>";
  for (const Quantile& quantile : kQuantiles)
    html << "<td>" << fixed(ms(all.latency.quantile(quantile.q)), 3) << "</td>";
  html << "<td>" << fixed(ms(all.latency.max()), 3) << "</td></tr></table>\n";
  html << "<table><tr><th class=\"l\">outcome</th><th class=\"l\">kind</th><th>count</th></tr>";
  for (const auto& [label, outcome] : all.outcomes) {
    html << "<tr><td class=\"l\">" << html_escape(label) << "</td><td class=\"l\">"
         << kind_name(outcome.kind) << "</td><td>" << outcome.count << "</td></tr>";
  }
  html << "</table>\n";
  if (report.phases.size() > 1) {
    html << "<h2>Phases</h2><table><tr><th class=\"l\">phase</th><th class=\"l\">faults</th>"
         << "<th>start s</th><th>requests</th><th>req/s</th><th>error rate %</th>"
         << "<th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>";
    for (std::size_t i = 0; i < report.phases.size(); ++i) {
      const PhasePlan& phase = report.phases[i];
      const PhaseStats& stats = report.stats.phases[i];
      std::string faults;
      for (const std::string& fault : phase.faults)
        faults += (faults.empty() ? "" : "; ") + fault;
      html << "<tr><td class=\"l\">" << html_escape(phase.name) << "</td><td class=\"l\">"
           << html_escape(faults.empty() ? "none" : faults) << "</td><td>"
           << fixed(phase.start_seconds, 1) << "</td><td>" << stats.requests << "</td><td>"
           << fixed(phase_rate(report, i), 1) << "</td><td>" << fixed(100 * stats.error_rate(), 2)
           << "</td><td>" << fixed(ms(stats.latency.quantile(0.5)), 3) << "</td><td>"
           << fixed(ms(stats.latency.quantile(0.99)), 3) << "</td><td>"
           << fixed(ms(stats.latency.max()), 3) << "</td></tr>";
    }
    html << "</table>\n";
  }
  // "All counted requests" is drawn unless it is one phase's line again (ramp-up and one
  // counted phase, or a single phase).
  std::size_t counted = 0;
  for (const PhasePlan& phase : report.phases)
    counted += phase.in_summary ? 1 : 0;
  std::vector<Series> spectra;
  if (report.phases.size() <= 1 || counted > 1)
    spectra.push_back(spectrum("all counted requests", kColors[0], all.latency));
  if (report.phases.size() > 1) {
    for (std::size_t i = 0; i < report.phases.size(); ++i) {
      spectra.push_back(spectrum(report.phases[i].name, kColors[(i + 1) % std::size(kColors)],
                                 report.stats.phases[i].latency));
    }
  }
  std::vector<Tick> percentiles{{0, "0%"},    {1, "90%"},    {2, "99%"},
                                {3, "99.9%"}, {4, "99.99%"}, {5, "99.999%"}};
  html << "<h2>Latency by percentile</h2>\n"
       << line_chart("Latency percentile spectrum", "percentile", "latency (ms)", spectra,
                     percentiles, {});
  Series rate{"requests/s", kColors[0], {}}, errors{"errors/s", kColors[1], {}},
      p50{"p50", kColors[2], {}}, p99{"p99", kColors[3], {}};
  for (std::size_t second = 0; second < report.stats.seconds.size(); ++second) {
    const SecondStats& stats = report.stats.seconds[second];
    auto x = static_cast<double>(second) + 0.5;  // the middle of the second it stands for
    rate.points.emplace_back(x, static_cast<double>(stats.requests));
    errors.points.emplace_back(x, static_cast<double>(stats.errors));
    if (stats.latency.count() > 0) {
      p50.points.emplace_back(x, ms(stats.latency.quantile(0.5)));
      p99.points.emplace_back(x, ms(stats.latency.quantile(0.99)));
    }
  }
  std::vector<Tick> markers = phase_markers(report);
  html << "<h2>Over time</h2>\n"
       << line_chart("Throughput and errors", "seconds", "per second", {rate, errors}, {}, markers)
       << line_chart("Latency (answers completed in each second)", "seconds", "latency (ms)",
                     {p50, p99}, {}, markers)
       << "</body></html>\n";
  return html.str();
}

}  // namespace xks::load
