// Answers for requests whose HSM work has not finished by their deadline: one thread keeps the
// in-flight requests in deadline order and expires those still unanswered when their deadline
// comes. Entries are held weakly and removed lazily (a finished request costs nothing here), so
// the thread wakes about once per deadline period under steady load, not once per request.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace xks::proxy {

class DeadlineWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // What is watched: `expire()` runs on the watch's thread at the deadline unless `done()`.
  class Watched {
   public:
    virtual ~Watched() = default;
    virtual bool done() const = 0;
    virtual void expire() = 0;
  };

  DeadlineWatch();
  ~DeadlineWatch();  // stops; what is still watched is not expired
  DeadlineWatch(const DeadlineWatch&) = delete;
  DeadlineWatch& operator=(const DeadlineWatch&) = delete;

  void watch(Clock::time_point deadline, std::weak_ptr<Watched> watched);

 private:
  struct Entry {
    Clock::time_point deadline;
    std::weak_ptr<Watched> watched;
    bool operator>(const Entry& other) const { return deadline > other.deadline; }
  };

  void run(std::stop_token stop);

  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> entries_;
  std::jthread thread_;  // last: stopped first
};

}  // namespace xks::proxy
