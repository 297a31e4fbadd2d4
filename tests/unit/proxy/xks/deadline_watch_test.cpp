// The deadline watch expires what is still unanswered at its deadline, in deadline order, and
// forgets what was answered or dropped, without keeping it alive.
#include "deadline_watch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace xks::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = DeadlineWatch::Clock;

class Request final : public DeadlineWatch::Watched {
 public:
  Request(int id, std::mutex& mutex, std::vector<int>& expired, std::promise<void>* last = nullptr)
      : id_(id), mutex_(mutex), expired_(expired), last_(last) {}

  bool done() const override { return answered; }
  void expire() override {
    std::lock_guard lock(mutex_);
    expired_.push_back(id_);
    if (last_ != nullptr)
      last_->set_value();
  }

  std::atomic<bool> answered{false};

 private:
  int id_;
  std::mutex& mutex_;
  std::vector<int>& expired_;
  std::promise<void>* last_;
};

TEST(DeadlineWatchTest, ExpiresOnlyWhatIsStillUnansweredInDeadlineOrder) {
  std::mutex mutex;
  std::vector<int> expired;
  std::promise<void> last;
  DeadlineWatch watch;
  auto now = Clock::now();
  auto late = std::make_shared<Request>(3, mutex, expired, &last);
  auto answered = std::make_shared<Request>(2, mutex, expired);
  auto early = std::make_shared<Request>(1, mutex, expired);
  answered->answered = true;
  // Watched out of order: the watch sorts by deadline.
  watch.watch(now + 60ms, late);
  watch.watch(now + 40ms, answered);
  watch.watch(now + 20ms, early);
  ASSERT_EQ(last.get_future().wait_for(10s), std::future_status::ready);
  std::lock_guard lock(mutex);
  EXPECT_EQ(expired, (std::vector<int>{1, 3}));
}

TEST(DeadlineWatchTest, HoldsWhatItWatchesWeakly) {
  std::mutex mutex;
  std::vector<int> expired;
  std::promise<void> last;
  DeadlineWatch watch;
  auto gone = std::make_shared<Request>(1, mutex, expired);
  std::weak_ptr<Request> observer = gone;
  watch.watch(Clock::now() + 20ms, gone);
  gone.reset();  // finished and freed before its deadline
  // The watch thread may be looking at it this very moment (it locks the pointer to check it,
  // never to wait): once it has looked, nothing keeps the request alive.
  for (int i = 0; i < 1000 && !observer.expired(); ++i)
    std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(observer.expired());
  auto kept = std::make_shared<Request>(2, mutex, expired, &last);
  watch.watch(Clock::now() + 40ms, kept);
  ASSERT_EQ(last.get_future().wait_for(10s), std::future_status::ready);
  std::lock_guard lock(mutex);
  EXPECT_EQ(expired, (std::vector<int>{2}));
}

TEST(DeadlineWatchTest, AnEarlierDeadlineWakesTheWatch) {
  std::mutex mutex;
  std::vector<int> expired;
  std::promise<void> first;
  DeadlineWatch watch;
  auto far = std::make_shared<Request>(1, mutex, expired);
  watch.watch(Clock::now() + 1h, far);
  auto near = std::make_shared<Request>(2, mutex, expired, &first);
  watch.watch(Clock::now() + 10ms, near);
  // Without the wake-up the watch would sleep until the far deadline.
  ASSERT_EQ(first.get_future().wait_for(10s), std::future_status::ready);
  std::lock_guard lock(mutex);
  EXPECT_EQ(expired, (std::vector<int>{2}));
}

}  // namespace
}  // namespace xks::proxy
