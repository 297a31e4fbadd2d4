// Deep health of one HSM: an encrypt and decrypt with a dedicated health key through the real
// session pool, cached so that GetHealthStatus never waits on the HSM more than once a period
// (the spec allows a cached answer up to 60 s old).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "xks/hsm/key_service.h"
#include "xks/hsm/pkcs11_module.h"

namespace xks::hsm {

enum class HealthState : std::uint8_t { kActive, kDegraded, kUnavailable };

std::string_view health_state_name(HealthState state);  // ACTIVE | DEGRADED | UNAVAILABLE

struct HealthReport {
  HealthState state = HealthState::kUnavailable;
  std::string detail;  // why, for logs
  SessionPool::Clock::time_point checked_at{};
};

struct HealthOptions {
  std::chrono::seconds max_age{60};
  std::chrono::milliseconds slow{100};  // a check slower than this is DEGRADED
};

class HsmHealth {
 public:
  HsmHealth(KeyService& service, std::string health_key, TokenInfo token, HealthOptions options);

  // The cached report while it is younger than max_age; otherwise a fresh check.
  HealthReport current(KeyService::Deadline deadline);
  // Checks now and caches the result.
  HealthReport check(KeyService::Deadline deadline);
  // The last report, without touching the HSM (UNAVAILABLE before the first check).
  HealthReport last();

  const TokenInfo& token() const { return token_; }
  // "<manufacturer> <model>, hardware x.y, firmware x.y": what ekmFleetDetails.model shows.
  std::string model() const;

 private:
  KeyService& service_;
  std::string health_key_;
  TokenInfo token_;
  HealthOptions options_;
  std::mutex mutex_;
  HealthReport last_;
  bool checked_ = false;
};

}  // namespace xks::hsm
