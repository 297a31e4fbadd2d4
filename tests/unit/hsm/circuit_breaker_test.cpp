// The circuit breaker's state machine on a clock the test moves: when it opens, how an open
// circuit is probed, how the cool-down backs off, and what it tells its listener.
#include "xks/hsm/circuit_breaker.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace xks::hsm {
namespace {

using namespace std::chrono_literals;
using Clock = CircuitBreaker::Clock;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreaker make(CircuitBreakerOptions options = {}) {
    return CircuitBreaker(options, [this] { return now_; });
  }
  void advance(Clock::duration by) { now_ += by; }

  Clock::time_point now_ = Clock::time_point{} + 1000h;
};

TEST_F(CircuitBreakerTest, OpensAfterConsecutiveFailuresWhichASuccessResets) {
  CircuitBreaker breaker = make({.consecutive_failures = 3, .minimum_calls = 1000});
  breaker.record_failure();
  breaker.record_failure();
  breaker.record_success();  // the run is broken
  breaker.record_failure();
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);
  EXPECT_TRUE(breaker.allow());
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), CircuitState::kOpen);
  EXPECT_FALSE(breaker.allow());
}

TEST_F(CircuitBreakerTest, OpensOnAFailureRatioOverTheWindowOnly) {
  CircuitBreaker breaker = make(
      {.consecutive_failures = 1000, .failure_ratio = 0.5, .minimum_calls = 10, .window = 10s});
  // Alternating results: half of the calls fail, but not before the minimum count.
  for (int i = 0; i < 4; ++i) {
    breaker.record_failure();
    breaker.record_success();
  }
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);  // 8 calls: too few to judge
  // Old failures leave the window: 8 more calls after 11 s are judged on their own.
  advance(11s);
  for (int i = 0; i < 8; ++i)
    breaker.record_success();
  breaker.record_failure();
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);  // 2 of 10 in the window
  for (int i = 0; i < 8; ++i)
    breaker.record_failure();
  EXPECT_EQ(breaker.state(), CircuitState::kOpen);  // 10 of 18
}

TEST_F(CircuitBreakerTest, AnOpenCircuitIsProbedAfterACoolDownThatBacksOff) {
  CircuitBreaker breaker =
      make({.consecutive_failures = 1, .open_for = 100ms, .max_open_for = 300ms});
  EXPECT_FALSE(breaker.probe_at().has_value());  // closed: nothing to probe
  breaker.record_failure();
  ASSERT_EQ(breaker.state(), CircuitState::kOpen);
  EXPECT_EQ(breaker.probe_at(), now_ + 100ms);
  EXPECT_FALSE(breaker.begin_probe());  // still cooling down
  advance(100ms);
  ASSERT_TRUE(breaker.begin_probe());
  EXPECT_EQ(breaker.state(), CircuitState::kHalfOpen);
  EXPECT_FALSE(breaker.allow());        // only the probe goes to the backend
  EXPECT_FALSE(breaker.begin_probe());  // one probe at a time
  breaker.end_probe(false);
  EXPECT_EQ(breaker.state(), CircuitState::kOpen);
  EXPECT_EQ(breaker.probe_at(), now_ + 200ms);  // doubled
  advance(200ms);
  ASSERT_TRUE(breaker.begin_probe());
  breaker.end_probe(false);
  EXPECT_EQ(breaker.probe_at(), now_ + 300ms);  // capped
  advance(300ms);
  ASSERT_TRUE(breaker.begin_probe());
  breaker.end_probe(true);
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);
  EXPECT_TRUE(breaker.allow());
  // Closed again with a clean slate and the first cool-down.
  breaker.record_failure();
  EXPECT_EQ(breaker.probe_at(), now_ + 100ms);
}

TEST_F(CircuitBreakerTest, ResultsOutsideTheClosedStateDoNotCount) {
  CircuitBreaker breaker = make({.consecutive_failures = 2});
  breaker.record_failure();
  breaker.record_failure();
  ASSERT_EQ(breaker.state(), CircuitState::kOpen);
  // Late results of calls made before it opened change nothing.
  breaker.record_success();
  EXPECT_EQ(breaker.state(), CircuitState::kOpen);
  advance(1s);
  ASSERT_TRUE(breaker.begin_probe());
  breaker.end_probe(true);
  breaker.record_failure();  // one failure on a fresh count
  EXPECT_EQ(breaker.state(), CircuitState::kClosed);
}

TEST_F(CircuitBreakerTest, TellsItsListenerEveryTransition) {
  CircuitBreaker breaker = make({.consecutive_failures = 1, .open_for = 10ms});
  std::vector<std::pair<CircuitState, CircuitState>> seen;
  breaker.on_change([&seen](CircuitState from, CircuitState to) { seen.emplace_back(from, to); });
  breaker.record_failure();
  advance(10ms);
  breaker.begin_probe();
  breaker.end_probe(true);
  using S = CircuitState;
  EXPECT_EQ(seen,
            (std::vector<std::pair<S, S>>{
                {S::kClosed, S::kOpen}, {S::kOpen, S::kHalfOpen}, {S::kHalfOpen, S::kClosed}}));
  EXPECT_EQ(circuit_state_name(S::kHalfOpen), "half_open");
}

}  // namespace
}  // namespace xks::hsm
