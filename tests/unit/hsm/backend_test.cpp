// hsm::Backend on a real SoftHSM token: it starts only when the vendor profile's self-test
// passes with the health key, serves encrypt and decrypt through its executor, and every
// failure to open names what is wrong (the PIN source, the module, the token, the health key)
// without the PIN.
#include "xks/hsm/backend.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <future>
#include <mutex>
#include <vector>

#include "hsm_fixture.h"

namespace xks::hsm {
namespace {

using namespace std::chrono_literals;

class BackendTest : public test::HsmFixture {
 protected:
  // Call after creating keys: the backend loads the module itself, and a PKCS#11 module is
  // initialised once per process.
  BackendOptions options() {
    module_.reset();
    std::string pin_file = (token_.dir() / "pin").string();
    std::ofstream(pin_file) << token_.user_pin() << "\n";
    return {.module = {test::kSoftHsmModule},
            .token = {TokenSelector::By::kLabel, token_.label()},
            .pin = {PinSource::From::kFile, pin_file, {}},
            .profile = *vendor_profile("softhsm"),
            .health_key = "health",
            .sessions = 2,
            .workers = 1,
            .circuit_breaker = {.consecutive_failures = 1, .open_for = 20ms},
            .on_event = {},
            .on_key_change = {},
            .on_keys_read = {}};
  }
};

TEST_F(BackendTest, StartsAfterItsSelfTestAndServesThroughItsExecutor) {
  create_key("health");
  create_key("foo");
  auto backend = Backend::start(options());
  ASSERT_TRUE(backend.has_value()) << backend.error().message;
  EXPECT_EQ((*backend)->token().label, token_.label());
  EXPECT_EQ((*backend)->health().last().state, HealthState::kActive);
  std::promise<bool> sealed;
  ASSERT_TRUE((*backend)->executor().submit([&] {
    auto deadline = SessionPool::Clock::now() + std::chrono::seconds(5);
    const Bytes plaintext{1, 2, 3};
    auto result = (*backend)->keys().encrypt("foo", plaintext, {}, {}, deadline);
    sealed.set_value(result.has_value());
  }));
  EXPECT_TRUE(sealed.get_future().get());
}

TEST_F(BackendTest, AnOpenCircuitIsProbedWithTheHealthKeyAndClosesWhenTheHsmAnswers) {
  create_key("health");
  auto backend = Backend::start(options());
  ASSERT_TRUE(backend.has_value()) << backend.error().message;
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<CircuitState> seen;
  (*backend)->watch_circuit([&](CircuitState, CircuitState to) {
    std::lock_guard lock(mutex);
    seen.push_back(to);
    changed.notify_all();
  });
  (*backend)->circuit().record_failure();  // the HSM stopped answering, as far as it knows
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, 10s, [&] { return seen.size() == 3; }));
  EXPECT_EQ(seen, (std::vector<CircuitState>{CircuitState::kOpen, CircuitState::kHalfOpen,
                                             CircuitState::kClosed}));
  EXPECT_TRUE((*backend)->circuit().allow());
}

TEST_F(BackendTest, AMissingHealthKeyFailsTheSelfTest) {
  auto backend = Backend::start(options());
  ASSERT_FALSE(backend.has_value());
  EXPECT_NE(backend.error().message.find("self-test of vendor profile 'softhsm' with health "
                                         "key 'health' failed"),
            std::string::npos)
      << backend.error().message;
}

TEST_F(BackendTest, EachOpeningProblemIsNamedWithoutThePin) {
  create_key("health");
  BackendOptions wrong_pin = options();
  std::ofstream(wrong_pin.pin.name) << "999999999\n";
  auto backend = Backend::start(wrong_pin);
  ASSERT_FALSE(backend.has_value());
  EXPECT_EQ(backend.error().kind, HsmErrorKind::kLoginFailed);
  EXPECT_EQ(backend.error().message.find(token_.user_pin()), std::string::npos);

  BackendOptions no_module = options();
  no_module.module.path = "/nonexistent/libpkcs11.so";
  EXPECT_FALSE(open_token(no_module.module, no_module.token, no_module.pin).has_value());

  BackendOptions no_token = options();
  no_token.token.value = "no-such-token";
  auto opened = open_token(no_token.module, no_token.token, no_token.pin);
  ASSERT_FALSE(opened.has_value());
  EXPECT_NE(opened.error().message.find("no-such-token"), std::string::npos)
      << opened.error().message;

  BackendOptions no_pin = options();
  no_pin.pin = {PinSource::From::kEnvironment, "XKS_BACKEND_TEST_UNSET_PIN", {}};
  ::unsetenv("XKS_BACKEND_TEST_UNSET_PIN");
  opened = open_token(no_pin.module, no_pin.token, no_pin.pin);
  ASSERT_FALSE(opened.has_value());
  EXPECT_NE(opened.error().message.find("XKS_BACKEND_TEST_UNSET_PIN"), std::string::npos)
      << opened.error().message;
}

}  // namespace
}  // namespace xks::hsm
