// The HSM executor: work runs off the caller's thread, the queue bound refuses excess work,
// and queued work still runs at shutdown; built for inline calls, work asked to run inline
// runs on the caller's thread, and stopping waits for it.
#include "xks/hsm/hsm_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <latch>
#include <thread>

namespace xks::hsm {
namespace {

TEST(HsmExecutor, RunsWorkOnItsOwnThreads) {
  std::promise<std::thread::id> ran_on;
  HsmExecutor executor(2, 16);
  ASSERT_TRUE(executor.submit([&] { ran_on.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(ran_on.get_future().get(), std::this_thread::get_id());
}

TEST(HsmExecutor, RunsWorkInlineWhenBuiltForItAndAskedUntilStopped) {
  HsmExecutor executor(1, 16, /*inline_calls=*/true);
  EXPECT_TRUE(executor.inline_calls());
  std::thread::id ran_on;
  ASSERT_TRUE(executor.submit([&] { ran_on = std::this_thread::get_id(); }, true));
  EXPECT_EQ(ran_on, std::this_thread::get_id());  // done when submit returns
  std::promise<std::thread::id> queued_ran_on;
  ASSERT_TRUE(executor.submit([&] { queued_ran_on.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(queued_ran_on.get_future().get(), std::this_thread::get_id());
  executor.stop();
  bool ran = false;
  EXPECT_FALSE(executor.submit([&] { ran = true; }, true));
  EXPECT_FALSE(ran);
}

TEST(HsmExecutor, NeverRunsInlineUnlessBuiltForIt) {
  std::promise<std::thread::id> ran_on;
  HsmExecutor executor(1, 16);
  ASSERT_TRUE(executor.submit([&] { ran_on.set_value(std::this_thread::get_id()); }, true));
  EXPECT_NE(ran_on.get_future().get(), std::this_thread::get_id());
}

TEST(HsmExecutor, StopWaitsForInlineWorkUnderWay) {
  HsmExecutor executor(1, 16, true);
  std::latch started(1);
  std::atomic<bool> finished{false};
  std::thread caller([&] {
    executor.submit(
        [&] {
          started.count_down();
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          finished = true;
        },
        true);
  });
  started.wait();
  executor.stop();
  EXPECT_TRUE(finished);
  caller.join();
}

TEST(HsmExecutor, RefusesWorkBeyondItsQueueBound) {
  std::latch release(1);
  std::promise<void> started;
  std::atomic<int> ran{0};
  HsmExecutor executor(1, 2);  // last: its destructor runs queued work that uses the above
  ASSERT_TRUE(executor.submit([&] {
    started.set_value();
    release.wait();
  }));
  started.get_future().wait();  // the worker is busy; the queue is empty
  EXPECT_TRUE(executor.submit([&] { ++ran; }));
  EXPECT_TRUE(executor.submit([&] { ++ran; }));
  EXPECT_FALSE(executor.submit([&] { ++ran; }));
  EXPECT_EQ(executor.queued(), 2u);
  release.count_down();
}

TEST(HsmExecutor, RunsEverythingQueuedBeforeItStops) {
  std::atomic<int> ran{0};
  {
    HsmExecutor executor(2, 1000);
    for (int i = 0; i < 1000; ++i)
      ASSERT_TRUE(executor.submit([&] { ++ran; }));
  }
  EXPECT_EQ(ran.load(), 1000);
}

}  // namespace
}  // namespace xks::hsm
