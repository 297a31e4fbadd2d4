// A key store's quota ([keystore.quota]): token buckets for the key store and for each of its
// keys, refilled continuously at their rate up to their burst. Thread-safe (one short lock per
// admitted request).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "xks/proxy/config/config.h"

namespace xks::proxy {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // Starts full.
  TokenBucket(double rate_per_second, double burst, Clock::time_point now);
  // Refills to `now`; true when a whole token is there.
  bool ready(Clock::time_point now);
  void take() { tokens_ -= 1; }

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point refilled_;
};

class Quota {
 public:
  using Clock = TokenBucket::Clock;
  enum class Result { kAdmitted, kKeyStoreThrottled, kKeyThrottled };
  // Keys beyond this many share one bucket (their ids come from signed requests, but an
  // authorized caller can still name any id a pattern in `keys` matches).
  static constexpr std::size_t kMaxKeyBuckets = 4096;

  Quota(const QuotaConfig& config, Clock::time_point now);
  // Takes a token from each bucket that applies, or from none when one is empty.
  Result admit(std::string_view key_id, Clock::time_point now);
  const QuotaConfig& config() const { return config_; }

 private:
  TokenBucket& key_bucket(std::string_view key_id, Clock::time_point now);

  const QuotaConfig config_;
  std::mutex mutex_;
  std::optional<TokenBucket> store_;
  std::map<std::string, TokenBucket, std::less<>> keys_;
  std::optional<TokenBucket> other_keys_;
};

}  // namespace xks::proxy
