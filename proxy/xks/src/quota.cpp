// Token buckets for the key stores' quotas.
#include "quota.h"

#include <algorithm>

namespace xks::proxy {

TokenBucket::TokenBucket(double rate_per_second, double burst, Clock::time_point now)
    : rate_(rate_per_second), burst_(burst), tokens_(burst), refilled_(now) {}

bool TokenBucket::ready(Clock::time_point now) {
  if (now > refilled_) {
    tokens_ =
        std::min(burst_, tokens_ + std::chrono::duration<double>(now - refilled_).count() * rate_);
    refilled_ = now;
  }
  return tokens_ >= 1;
}

Quota::Quota(const QuotaConfig& config, Clock::time_point now) : config_(config) {
  if (config_.requests_per_second > 0)
    store_.emplace(config_.requests_per_second, config_.burst, now);
}

TokenBucket& Quota::key_bucket(std::string_view key_id, Clock::time_point now) {
  if (auto found = keys_.find(key_id); found != keys_.end())
    return found->second;
  if (keys_.size() < kMaxKeyBuckets) {
    return keys_
        .emplace(std::string(key_id),
                 TokenBucket(config_.key_requests_per_second, config_.key_burst, now))
        .first->second;
  }
  if (!other_keys_)
    other_keys_.emplace(config_.key_requests_per_second, config_.key_burst, now);
  return *other_keys_;
}

Quota::Result Quota::admit(std::string_view key_id, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  TokenBucket* key = nullptr;
  if (config_.key_requests_per_second > 0) {
    key = &key_bucket(key_id, now);
    if (!key->ready(now))
      return Result::kKeyThrottled;
  }
  if (store_ && !store_->ready(now))
    return Result::kKeyStoreThrottled;
  if (key != nullptr)
    key->take();
  if (store_)
    store_->take();
  return Result::kAdmitted;
}

}  // namespace xks::proxy
