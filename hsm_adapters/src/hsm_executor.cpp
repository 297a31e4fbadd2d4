// The HSM worker threads.
#include "xks/hsm/hsm_executor.h"

namespace xks::hsm {

HsmExecutor::HsmExecutor(std::size_t threads, std::size_t max_queued, bool inline_calls)
    : max_queued_(max_queued), thread_count_(threads), inline_calls_(inline_calls) {
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i)
    workers_.emplace_back([this] { run(); });
}

HsmExecutor::~HsmExecutor() {
  stop();
}

void HsmExecutor::stop() {
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    inline_done_.wait(lock, [this] { return running_inline_ == 0; });
  }
  work_available_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable() && worker.get_id() != std::this_thread::get_id())
      worker.join();
  }
}

bool HsmExecutor::submit(std::function<void()> work, bool run_inline) {
  if (run_inline && inline_calls_) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_)
        return false;
      ++running_inline_;
    }
    struct Done {
      HsmExecutor& executor;
      ~Done() {
        std::lock_guard lock(executor.mutex_);
        if (--executor.running_inline_ == 0)
          executor.inline_done_.notify_all();
      }
    } done{*this};
    work();
    return true;
  }
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queued_)
      return false;
    queue_.push_back(std::move(work));
  }
  work_available_.notify_one();
  return true;
}

std::size_t HsmExecutor::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void HsmExecutor::run() {
  while (true) {
    std::function<void()> work;
    {
      std::unique_lock lock(mutex_);
      work_available_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;  // stopping, and everything queued has run
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

}  // namespace xks::hsm
