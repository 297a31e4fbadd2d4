// The metrics module: exact exposition text, escaping, histogram buckets, exact counts under
// concurrency, and promtool's verdict on the output.
#include "xks/proxy/ops/metrics.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "subprocess.h"

namespace xks::proxy::metrics {
namespace {

TEST(Metrics, SerializesEachTypeInTheTextFormat) {
  Registry registry;
  auto& requests = registry.counter("xks_requests_total", "XKS requests.", {"operation", "result"});
  requests.labels({"Encrypt", "ok"}).inc();
  requests.labels({"Encrypt", "ok"}).inc(2);
  requests.labels({"Decrypt", "error"}).inc();
  registry.gauge("xks_sessions", "Sessions by state.", {"state"}).labels({"idle"}).set(7);
  auto& latency =
      registry.histogram("xks_latency_seconds", "Latency.", {"operation"}, {0.001, 0.01, 0.1});
  Histogram& encrypt = latency.labels({"Encrypt"});
  encrypt.observe(0.0005);
  encrypt.observe(0.001);  // on a bound: counted in that bucket (le)
  encrypt.observe(0.05);
  encrypt.observe(3);
  EXPECT_EQ(registry.serialize(),
            "# HELP xks_requests_total XKS requests.\n"
            "# TYPE xks_requests_total counter\n"
            "xks_requests_total{operation=\"Decrypt\",result=\"error\"} 1\n"
            "xks_requests_total{operation=\"Encrypt\",result=\"ok\"} 3\n"
            "# HELP xks_sessions Sessions by state.\n"
            "# TYPE xks_sessions gauge\n"
            "xks_sessions{state=\"idle\"} 7\n"
            "# HELP xks_latency_seconds Latency.\n"
            "# TYPE xks_latency_seconds histogram\n"
            "xks_latency_seconds_bucket{operation=\"Encrypt\",le=\"0.001\"} 2\n"
            "xks_latency_seconds_bucket{operation=\"Encrypt\",le=\"0.01\"} 2\n"
            "xks_latency_seconds_bucket{operation=\"Encrypt\",le=\"0.1\"} 3\n"
            "xks_latency_seconds_bucket{operation=\"Encrypt\",le=\"+Inf\"} 4\n"
            "xks_latency_seconds_sum{operation=\"Encrypt\"} 3.0515\n"
            "xks_latency_seconds_count{operation=\"Encrypt\"} 4\n");
}

TEST(Metrics, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_help("line\\one\nline two"), "line\\\\one\\nline two");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1e-4), "0.0001");
  EXPECT_EQ(format_value(12345678), "12345678");
}

TEST(Metrics, CountsExactlyUnderConcurrency) {
  Registry registry;
  Counter& counter = registry.counter("c_total", "c").labels({});
  Histogram& histogram = registry.histogram("h_seconds", "h", {}, {0.5}).labels({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        counter.inc();
        histogram.observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(counter.value(), 400000);
  Histogram::Snapshot snapshot = histogram.snapshot();
  EXPECT_EQ(snapshot.cumulative, (std::vector<std::uint64_t>{200000, 400000}));
  EXPECT_DOUBLE_EQ(snapshot.sum, 200000 * 0.25 + 200000 * 1.0);
}

TEST(Metrics, ScrapeRefreshesMirroredGauges) {
  Registry registry;
  Gauge& depth = registry.gauge("queue_depth", "Queue depth.").labels({});
  int calls = 0;
  registry.on_scrape([&] { depth.set(++calls * 10); });
  EXPECT_NE(registry.serialize().find("queue_depth 10\n"), std::string::npos);
  EXPECT_NE(registry.serialize().find("queue_depth 20\n"), std::string::npos);
}

TEST(Metrics, PromtoolAcceptsTheOutput) {
  Registry registry;
  registry.counter("xks_requests_total", "Requests \"quoted\" and \\ escaped.", {"error"})
      .labels({"Validation\"Exception\\\n"})
      .inc();
  registry.gauge("xks_build_info", "Build.", {"version"}).labels({"0.1.0"}).set(1);
  registry
      .histogram("xks_request_duration_seconds", "Latency.", {"operation"},
                 {0.0001, 0.00025, 0.25, 1})
      .labels({"Encrypt"})
      .observe(0.0002);
  auto path = std::filesystem::temp_directory_path() /
              ("xks-metrics-" + std::to_string(::getpid()) + ".prom");
  std::ofstream(path) << registry.serialize();
  auto result = test::run_command("promtool check metrics < " + path.string() + " 2>&1");
  std::filesystem::remove(path);
  EXPECT_EQ(result.exit_code, 0) << result.output;
}

}  // namespace
}  // namespace xks::proxy::metrics
