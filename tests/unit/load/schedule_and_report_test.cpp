// The open-loop schedule (due times, ramp-up, count bounds) and the reports built from
// recorded outcomes: totals leave ramp-up out, errors are grouped, JSON and HTML carry them.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <regex>
#include <sstream>

#include "client.h"
#include "report.h"

namespace xks::load {
namespace {

using std::chrono::milliseconds;

double seconds_after(Clock::time_point start, Clock::time_point at) {
  return std::chrono::duration<double>(at - start).count();
}

TEST(Schedule, OpenLoopSendsAtTheRateAndRampsLinearly) {
  // Far in the future so that the schedule is not over while the test reads it.
  auto start = Clock::now() + std::chrono::hours(1);
  Schedule schedule(start, 10, 100, 2, 0);
  // Ramp: n requests by t = rate t^2 / (2 T): the 100th is due at t = 2 s, the end of the ramp.
  std::vector<double> due;
  for (int i = 0; i < 1100; ++i)
    due.push_back(seconds_after(start, *schedule.next()));
  EXPECT_DOUBLE_EQ(due[0], 0);
  EXPECT_NEAR(due[25], 1.0, 1e-6);  // 100 * 1^2 / 4 = 25
  EXPECT_NEAR(due[100], 2.0, 1e-6);
  EXPECT_NEAR(due[200], 3.0, 1e-6);  // then 100 per second
  EXPECT_NEAR(due[1099], 12.0 - 0.01, 1e-6);
  EXPECT_FALSE(schedule.next());  // the 1101st would be due at the end
  EXPECT_TRUE(schedule.over());
  EXPECT_EQ(schedule.unsent(), 0u);
}

TEST(Schedule, CountBoundAndUnsentRequests) {
  auto start = Clock::now() + std::chrono::hours(1);
  Schedule bounded(start, 10, 100, 0, 5);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(bounded.next());
  EXPECT_FALSE(bounded.next());
  EXPECT_TRUE(bounded.over());
  Schedule behind(Clock::now() - std::chrono::seconds(2), 1, 100, 0, 0);
  EXPECT_FALSE(behind.next());  // the run is over before anything was sent
  EXPECT_EQ(behind.unsent(), 100u);
}

TEST(Schedule, ClosedLoopStartsConnectionsOverTheRamp) {
  auto start = Clock::now() + std::chrono::hours(1);
  Schedule schedule(start, 10, 0, 4, 0);
  EXPECT_DOUBLE_EQ(seconds_after(start, schedule.connection_start(0, 8)), 0);
  EXPECT_DOUBLE_EQ(seconds_after(start, schedule.connection_start(4, 8)), 2);
  EXPECT_EQ(schedule.end() - start, std::chrono::seconds(14));
}

RunReport sample_report() {
  auto start = Clock::now();
  Recorder recorder(start, {0, 1}, 3);
  recorder.record(start, start + milliseconds(5), {OutcomeKind::kOk, "OK"});  // ramp-up
  for (int i = 0; i < 98; ++i) {
    recorder.record(start + milliseconds(1000), start + milliseconds(1001 + i % 3),
                    {OutcomeKind::kOk, "OK"});
  }
  recorder.record(start + milliseconds(1500), start + milliseconds(1502),
                  {OutcomeKind::kHttpError, "503 DependencyTimeoutException"});
  recorder.record(start + milliseconds(2500), start + milliseconds(2502),
                  {OutcomeKind::kTransport, "transport: timeout"});
  recorder.connection_opened();
  RunReport report;
  report.target = "https://localhost:8443/example";
  report.description = "test <run>";
  report.elapsed_seconds = 3;
  report.phases = {{"ramp-up", 0, 1, {}, false},
                   {"burst", 1, 2, {"fail C_Encrypt 0x30 every 2"}, true}};
  report.stats = recorder.take();
  return report;
}

TEST(Report, TotalsLeaveRampUpOutAndErrorsAreGrouped) {
  RunReport report = sample_report();
  Totals total = totals(report);
  EXPECT_EQ(total.all.requests, 100u);
  EXPECT_EQ(total.all.errors, 2u);
  EXPECT_DOUBLE_EQ(total.seconds, 2);
  EXPECT_DOUBLE_EQ(total.rate(), 50);
  auto json = boost::json::parse(json_report(report)).as_object();
  EXPECT_EQ(json.at("requests").to_number<std::uint64_t>(), 100u);
  EXPECT_EQ(json.at("ok").to_number<std::uint64_t>(), 98u);
  EXPECT_EQ(json.at("errors_by")
                .at("errorName")
                .at("DependencyTimeoutException")
                .to_number<std::uint64_t>(),
            1u);
  EXPECT_EQ(json.at("errors_by").at("http_status").at("503").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(json.at("errors_by").at("transport").at("timeout").to_number<std::uint64_t>(), 1u);
  const auto& phases = json.at("phases").as_array();
  ASSERT_EQ(phases.size(), 2u);
  EXPECT_EQ(phases[0].at("requests").to_number<std::uint64_t>(), 1u);
  EXPECT_DOUBLE_EQ(phases[1].at("error_rate").as_double(), 0.02);
  EXPECT_EQ(phases[1].at("faults").as_array().size(), 1u);
  // Answers by the second they came in: 1 in the first, 99 in the second, 1 in the third.
  const auto& timeline = json.at("timeline").as_array();
  ASSERT_EQ(timeline.size(), 3u);
  EXPECT_EQ(timeline[0].at("requests").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(timeline[1].at("requests").to_number<std::uint64_t>(), 99u);
  EXPECT_EQ(timeline[2].at("errors").to_number<std::uint64_t>(), 1u);
  double p99 = json.at("latency_ms").at("p99").as_double();
  EXPECT_GE(p99, 2.0);
  EXPECT_LE(p99, 3.03);
}

TEST(Report, HtmlIsSelfContainedAndEscaped) {
  std::string html = html_report(sample_report());
  EXPECT_NE(html.find("test &lt;run&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<run>"), std::string::npos);
  EXPECT_NE(html.find("fail C_Encrypt 0x30 every 2"), std::string::npos);
  std::size_t charts = 0;
  for (auto at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1))
    ++charts;
  EXPECT_EQ(charts, 3u);
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

// Every point of every line lies in its chart's plot area, with a latency (28 ms) just above a
// round axis step, and the one counted phase is not drawn twice.
TEST(Report, HtmlChartsKeepEveryPointInsideThePlotArea) {
  auto start = Clock::now();
  Recorder recorder(start, {0, 1}, 2);
  for (int i = 0; i < 50; ++i)
    recorder.record(start, start + milliseconds(28), {OutcomeKind::kOk, "OK"});
  for (int i = 0; i < 50; ++i) {
    recorder.record(start + milliseconds(1000), start + milliseconds(1001),
                    {OutcomeKind::kOk, "OK"});
  }
  RunReport report;
  report.phases = {{"ramp-up", 0, 1, {}, false}, {"steady", 1, 1, {}, true}};
  report.elapsed_seconds = 2;
  report.stats = recorder.take();
  std::string html = html_report(report);
  EXPECT_EQ(html.find("all counted requests"), std::string::npos);
  const std::regex svg_pattern("<svg[^]*?</svg>");
  const std::regex area_pattern(
      "class=\"plot-area\" x=\"([0-9.]+)\" y=\"([0-9.]+)\" width=\"([0-9.]+)\" "
      "height=\"([0-9.]+)\"");
  const std::regex points_pattern("class=\"series\"[^>]*points=\"([^\"]*)\"");
  std::size_t charts = 0, points = 0;
  for (std::sregex_iterator svg(html.begin(), html.end(), svg_pattern), end; svg != end; ++svg) {
    ++charts;
    std::string chart = svg->str();
    std::smatch area;
    ASSERT_TRUE(std::regex_search(chart, area, area_pattern));
    double left = std::stod(area[1]), top = std::stod(area[2]);
    double right = left + std::stod(area[3]), bottom = top + std::stod(area[4]);
    for (std::sregex_iterator line(chart.begin(), chart.end(), points_pattern); line != end;
         ++line) {
      std::istringstream list((*line)[1].str());
      double x = 0, y = 0;
      char comma = 0;
      while (list >> x >> comma >> y) {
        ++points;
        EXPECT_GE(x, left);
        EXPECT_LE(x, right);
        EXPECT_GE(y, top);
        EXPECT_LE(y, bottom);
      }
    }
  }
  EXPECT_EQ(charts, 3u);
  EXPECT_GT(points, 10u);
}

}  // namespace
}  // namespace xks::load
