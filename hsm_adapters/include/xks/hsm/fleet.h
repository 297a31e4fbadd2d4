// The HSM backends one proxy serves from (DESIGN: HSM fleet). A call goes to a usable backend
// (its circuit closed) that holds the key: of those, the one with the fewest calls in flight,
// ties taken in turn.
// A call a backend did not answer is tried again by the caller on another usable backend while
// its deadline allows (all four XKS operations are safe to repeat). The key inventory is taken
// at start: a key that some backends lack is reported (key_gaps) and never sent to them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "xks/hsm/backend.h"

namespace xks::hsm {

class Fleet {
 public:
  static constexpr std::size_t kMaxMembers = 64;  // a bit each in a Tried set

  struct Member {
    std::string name;  // metrics label, ekmFleetDetails id, audit "hsm"
    std::unique_ptr<Backend> backend;
    std::unordered_set<std::string> key_ids;  // the secret keys' labels at start
    std::atomic<unsigned> in_flight{0};       // calls handed to its executor, not yet finished
    // A moving average of one call's time at the HSM layer (each new call weighs 1/8).
    std::atomic<std::int64_t> call_nanos{0};

    void record_call(std::chrono::nanoseconds took);
    // How long a call handed over now would take to be done, from the calls ahead of it in the
    // executor's queue and the average call time; zero while a thread is free.
    std::chrono::nanoseconds expected_completion() const;
  };

  // Members already tried for one request: bit i for member i.
  using Tried = std::uint64_t;

  // Takes each backend's key inventory. Names must be unique; at most kMaxMembers.
  static HsmResult<std::unique_ptr<Fleet>> assemble(
      std::vector<std::pair<std::string, std::unique_ptr<Backend>>> backends);

  // Stops every member before any goes (work on one may move to another), then destroys them.
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  std::size_t size() const { return members_.size(); }
  Member& member(std::size_t index) { return *members_[index]; }
  const Member& member(std::size_t index) const { return *members_[index]; }

  // The member to call for `key_id`, skipping those in `tried`; none when no usable member
  // holds the key. A key no member held at start may have been created since: any usable
  // member is then a candidate.
  std::optional<std::size_t> choose(std::string_view key_id, Tried tried = 0) const;

  // Whether some member held `key_id` at start. A key none held may have been made since, on
  // some members only: a member that answers "no such key" for it is not the last word.
  bool inventoried(std::string_view key_id) const;

  // Whether any member's circuit is closed.
  bool any_usable() const;

  // Keys some members held at start and others did not, each with the members that lack it.
  struct KeyGap {
    std::string key_id;
    std::vector<std::string> missing_from;
  };
  std::vector<KeyGap> key_gaps() const;

 private:
  explicit Fleet(std::vector<std::unique_ptr<Member>> members) : members_(std::move(members)) {}
  bool held_by_any(const std::string& key) const;

  std::vector<std::unique_ptr<Member>> members_;
  mutable std::atomic<std::size_t> next_{0};  // where choose() starts looking
};

}  // namespace xks::hsm
