// One per worker thread: ends the connections and streams that outlive their deadline, so that
// no exchange arms a timer of its own (timers cost system calls at tens of thousands of
// requests per second).
#pragma once

#include <memory>
#include <vector>

#include "connection.h"

namespace xks::load {

class Watchdog {
 public:
  void watch(const std::shared_ptr<Connection>& connection) { watched_.push_back(connection); }
  void work_started() { ++working_; }
  void work_done() { --working_; }

  // Checks every few milliseconds until the thread's work is done.
  awaitable<void> run();

 private:
  std::vector<std::weak_ptr<Connection>> watched_;
  unsigned working_ = 0;
};

}  // namespace xks::load
