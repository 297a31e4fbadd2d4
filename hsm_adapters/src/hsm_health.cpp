// Deep HSM health checks.
#include "xks/hsm/hsm_health.h"

namespace xks::hsm {

std::string_view health_state_name(HealthState state) {
  switch (state) {
    case HealthState::kActive:
      return "ACTIVE";
    case HealthState::kDegraded:
      return "DEGRADED";
    case HealthState::kUnavailable:
      return "UNAVAILABLE";
  }
  return "UNAVAILABLE";
}

HsmHealth::HsmHealth(KeyService& service, std::string health_key, TokenInfo token,
                     HealthOptions options)
    : service_(service),
      health_key_(std::move(health_key)),
      token_(std::move(token)),
      options_(options) {}

HealthReport HsmHealth::check(KeyService::Deadline deadline) {
  auto started = SessionPool::Clock::now();
  auto tested = service_.self_test(health_key_, deadline);
  auto finished = SessionPool::Clock::now();
  HealthReport report{HealthState::kActive, "encrypt and decrypt with the health key passed",
                      finished};
  if (!tested) {
    report.state = HealthState::kUnavailable;
    report.detail = "health check failed: " + tested.error().message;
  } else if (finished - started > options_.slow) {
    report.state = HealthState::kDegraded;
    report.detail = "health check slower than " + std::to_string(options_.slow.count()) + " ms";
  } else if (service_.pool().counts().missing > 0) {
    report.state = HealthState::kDegraded;
    report.detail = "some HSM sessions are being reconnected";
  }
  std::lock_guard lock(mutex_);
  last_ = report;
  checked_ = true;
  return report;
}

HealthReport HsmHealth::current(KeyService::Deadline deadline) {
  {
    std::lock_guard lock(mutex_);
    if (checked_ && SessionPool::Clock::now() - last_.checked_at < options_.max_age)
      return last_;
  }
  return check(deadline);
}

HealthReport HsmHealth::last() {
  std::lock_guard lock(mutex_);
  return last_;
}

std::string HsmHealth::model() const {
  auto version = [](const CK_VERSION& v) {
    return std::to_string(v.major) + "." + std::to_string(v.minor);
  };
  return token_.manufacturer + " " + token_.model + ", hardware " +
         version(token_.hardware_version) + ", firmware " + version(token_.firmware_version);
}

}  // namespace xks::hsm
