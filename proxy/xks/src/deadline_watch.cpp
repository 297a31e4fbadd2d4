// The deadline watch's thread.
#include "deadline_watch.h"

namespace xks::proxy {

DeadlineWatch::DeadlineWatch() : thread_([this](std::stop_token stop) { run(stop); }) {}

DeadlineWatch::~DeadlineWatch() {
  thread_.request_stop();
  thread_.join();
}

void DeadlineWatch::watch(Clock::time_point deadline, std::weak_ptr<Watched> watched) {
  bool earliest = false;
  {
    std::lock_guard lock(mutex_);
    earliest = entries_.empty() || deadline < entries_.top().deadline;
    entries_.push({deadline, std::move(watched)});
  }
  // Otherwise the thread already wakes no later than this deadline.
  if (earliest)
    changed_.notify_one();
}

void DeadlineWatch::run(std::stop_token stop) {
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    if (entries_.empty()) {
      changed_.wait(lock, stop, [this] { return !entries_.empty(); });
      continue;
    }
    Entry top = entries_.top();
    std::shared_ptr<Watched> watched = top.watched.lock();
    if (!watched || watched->done()) {
      entries_.pop();
      continue;
    }
    if (Clock::now() < top.deadline) {
      watched.reset();  // never keep a request alive while waiting
      Clock::time_point until = top.deadline;
      changed_.wait_until(lock, stop, until,
                          [this, until] { return entries_.top().deadline < until; });
      continue;
    }
    entries_.pop();
    lock.unlock();
    watched->expire();
    watched.reset();
    lock.lock();
  }
}

}  // namespace xks::proxy
