// Runs PKCS#11 work off the I/O threads: a fixed set of worker threads behind a bounded queue.
// A full queue refuses new work at once (the caller answers 503) instead of growing memory.
// Completion goes back to the caller's own executor from inside the submitted work, so this
// layer knows nothing of Asio. An executor built for inline calls (an in-process module, whose
// calls take microseconds of CPU and never wait on a device) also runs work on the submitting
// thread when the caller has nothing to overlap with it: handing it to a worker and back costs
// two wake-ups and context switches, more than the call.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace xks::hsm {

class HsmExecutor {
 public:
  HsmExecutor(std::size_t threads, std::size_t max_queued, bool inline_calls = false);
  ~HsmExecutor();  // stop()

  // Refuses new work, runs what is queued, and joins the threads. Idempotent.
  void stop();
  HsmExecutor(const HsmExecutor&) = delete;
  HsmExecutor& operator=(const HsmExecutor&) = delete;

  // False when the queue is full or the executor is stopping; `work` is then not run. With
  // `run_inline` (honoured when built for inline calls) `work` has run when this returns.
  bool submit(std::function<void()> work, bool run_inline = false);
  bool inline_calls() const { return inline_calls_; }

  std::size_t queued() const;
  std::size_t threads() const { return thread_count_; }

 private:
  void run();

  const std::size_t max_queued_;
  const std::size_t thread_count_;
  const bool inline_calls_;
  mutable std::mutex mutex_;
  std::condition_variable work_available_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::size_t running_inline_ = 0;       // inline work under way
  std::condition_variable inline_done_;  // running_inline_ went down
  std::vector<std::thread> workers_;
};

}  // namespace xks::hsm
