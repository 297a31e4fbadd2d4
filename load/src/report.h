// xks-load's outputs: the live line, the text summary, the JSON result and the
// self-contained HTML report with SVG charts.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "recorder.h"

namespace xks::load {

struct PhasePlan {
  std::string name;
  double start_seconds = 0;
  double seconds = 0;
  std::vector<std::string> faults;
  bool in_summary = true;  // ramp-up is not
};

struct RunReport {
  std::string target;       // https://host:port/prefix
  std::string description;  // protocol, loop, connections, mix
  std::string started_utc;
  double elapsed_seconds = 0;
  std::uint64_t unsent = 0;  // open loop: due before the end but never sent
  std::vector<PhasePlan> phases;
  RunStats stats;
};

// Summary figures over the phases that count (all but ramp-up).
struct Totals {
  PhaseStats all;
  double seconds = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(all.requests) / seconds : 0; }
};
Totals totals(const RunReport& report);

std::string live_line(std::size_t second, const SecondStats& stats);
void print_summary(std::ostream& out, const RunReport& report);
std::string json_report(const RunReport& report);
std::string html_report(const RunReport& report);

}  // namespace xks::load
