// Choosing a fleet member, and the key inventory.
#include "xks/hsm/fleet.h"

#include <algorithm>
#include <map>
#include <set>

namespace xks::hsm {

HsmResult<std::unique_ptr<Fleet>> Fleet::assemble(
    std::vector<std::pair<std::string, std::unique_ptr<Backend>>> backends) {
  if (backends.empty() || backends.size() > kMaxMembers) {
    return tl::unexpected(HsmError{HsmErrorKind::kOther, CKR_OK,
                                   "a fleet has 1 to " + std::to_string(kMaxMembers) + " HSMs"});
  }
  std::set<std::string> names;
  std::vector<std::unique_ptr<Member>> members;
  for (auto& [name, backend] : backends) {
    if (!names.insert(name).second) {
      return tl::unexpected(
          HsmError{HsmErrorKind::kOther, CKR_OK, "two HSMs are named '" + name + "'"});
    }
    auto labels = backend->key_labels();
    if (!labels) {
      HsmError error = labels.error();
      error.message = "HSM '" + name + "': listing its keys: " + error.message;
      return tl::unexpected(error);
    }
    auto member = std::make_unique<Member>();
    member->name = name;
    member->backend = std::move(backend);
    member->key_ids.insert(labels->begin(), labels->end());
    members.push_back(std::move(member));
  }
  return std::unique_ptr<Fleet>(new Fleet(std::move(members)));
}

Fleet::~Fleet() {
  for (const auto& member : members_)
    member->backend->stop();
  while (!members_.empty())
    members_.pop_back();  // the last first: the first member's module may finalise the rest's
}

bool Fleet::held_by_any(const std::string& key) const {
  for (const auto& member : members_) {
    if (member->key_ids.contains(key))
      return true;
  }
  return false;
}

bool Fleet::inventoried(std::string_view key_id) const {
  return held_by_any(std::string(key_id));
}

void Fleet::Member::record_call(std::chrono::nanoseconds took) {
  // Races between threads lose an update at worst: an estimate, not an account.
  std::int64_t average = call_nanos.load(std::memory_order_relaxed);
  std::int64_t next = average == 0 ? took.count() : average + (took.count() - average) / 8;
  call_nanos.store(next, std::memory_order_relaxed);
}

std::chrono::nanoseconds Fleet::Member::expected_completion() const {
  const std::size_t threads = std::max<std::size_t>(1, backend->executor().threads());
  const std::size_t ahead = in_flight.load(std::memory_order_relaxed);
  // A free thread starts the call at once: no prediction then (an average made of a few slow
  // calls must not refuse every call, or nothing would ever bring it down again).
  if (ahead < threads)
    return {};
  // Rounds of calls before this one starts, then its own.
  const std::size_t rounds = (ahead - threads) / threads + 1;
  return std::chrono::nanoseconds(call_nanos.load(std::memory_order_relaxed) *
                                  static_cast<std::int64_t>(rounds + 1));
}

std::optional<std::size_t> Fleet::choose(std::string_view key_id, Tried tried) const {
  std::string key(key_id);
  bool anyone_holds = held_by_any(key);
  std::optional<std::size_t> best;
  unsigned fewest = 0;
  // Ties go round: equally idle members share the work (and all stay exercised).
  std::size_t first = next_.fetch_add(1, std::memory_order_relaxed);
  for (std::size_t n = 0; n < members_.size(); ++n) {
    std::size_t i = (first + n) % members_.size();
    const Member& member = *members_[i];
    if ((tried >> i) & 1U)
      continue;
    if (anyone_holds && !member.key_ids.contains(key))
      continue;
    if (!member.backend->circuit().allow())
      continue;
    unsigned load = member.in_flight.load(std::memory_order_relaxed);
    if (!best || load < fewest) {
      best = i;
      fewest = load;
    }
  }
  return best;
}

bool Fleet::any_usable() const {
  for (const auto& member : members_) {
    if (member->backend->circuit().allow())
      return true;
  }
  return false;
}

std::vector<Fleet::KeyGap> Fleet::key_gaps() const {
  std::map<std::string, std::vector<std::string>> missing;
  for (const auto& holder : members_) {
    for (const std::string& key : holder->key_ids) {
      if (missing.contains(key))
        continue;
      std::vector<std::string>& lacking = missing[key];
      for (const auto& member : members_) {
        if (!member->key_ids.contains(key))
          lacking.push_back(member->name);
      }
    }
  }
  std::vector<KeyGap> gaps;
  for (auto& [key, lacking] : missing) {
    if (!lacking.empty())
      gaps.push_back({key, std::move(lacking)});
  }
  return gaps;
}

}  // namespace xks::hsm
