// The vendor profiles and fault handling, driven through the fault-injecting module over the
// real SoftHSM: HSM-made IVs (CloudHSM/nShield buffer, Luna appended), the all-zero-IV guard,
// error bursts and recovery, and deadlines under HSM latency.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <set>
#include <thread>

#include "hsm_fixture.h"
#include "xks/hsm/key_service.h"

namespace xks::hsm {
namespace {

using namespace std::chrono_literals;

class FaultModuleTest : public test::HsmFixture {
 protected:
  std::string module_path() const override { return XKS_FAULT_MODULE; }

  void SetUp() override {
    control_path_ = (token_.dir() / "fault-control").string();
    ::setenv("XKS_FAULT_TARGET", test::kSoftHsmModule, 1);
    ::setenv("XKS_FAULT_CONTROL", control_path_.c_str(), 1);
    HsmFixture::SetUp();
    ASSERT_NO_FATAL_FAILURE(create_key("foo"));
  }

  void control(const std::string& text) { std::ofstream(control_path_) << text; }

  void start(const std::string& profile, std::size_t sessions = 2) {
    ASSERT_NO_FATAL_FAILURE(open_pool({.sessions = sessions, .first_retry = 20ms}));
    service_ = std::make_unique<KeyService>(*pool_, *vendor_profile(profile));
  }

  void TearDown() override {
    service_.reset();
    HsmFixture::TearDown();
  }

  std::string control_path_;
  std::unique_ptr<KeyService> service_;
};

TEST_F(FaultModuleTest, CloudHsmAndNShieldProfilesUseTheIvTheHsmWrote) {
  for (const char* profile : {"cloudhsm", "nshield"}) {
    control("iv hsm-buffer\n");
    start(profile);
    std::set<std::string> ivs;
    Bytes plaintext(48, 5);
    for (int i = 0; i < 200; ++i) {
      auto sealed = service_->encrypt("foo", plaintext, {}, {}, in(2s));
      ASSERT_TRUE(sealed.has_value()) << profile << ": " << sealed.error().message;
      ASSERT_TRUE(ivs.emplace(sealed->gcm.iv.begin(), sealed->gcm.iv.end()).second);
      auto opened = service_->decrypt("foo", sealed->gcm.ciphertext, sealed->gcm.iv,
                                      sealed->gcm.tag, {}, sealed->ciphertext_metadata, {}, in(2s));
      ASSERT_TRUE(opened.has_value()) << opened.error().message;
      EXPECT_EQ(*opened, plaintext);
    }
    EXPECT_TRUE(service_->self_test("foo", in(2s)).has_value());
    service_.reset();
    pool_.reset();
  }
}

TEST_F(FaultModuleTest, LunaProfileTakesTheIvAppendedAfterTheTag) {
  control("iv hsm-append\n");
  start("luna");
  Bytes plaintext(100, 9);
  Bytes aad = *xks_aad(Bytes(10, 1), {});
  auto sealed = service_->encrypt("foo", plaintext, aad, {}, in(2s));
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  EXPECT_EQ(sealed->gcm.ciphertext.size(), plaintext.size());
  EXPECT_EQ(sealed->gcm.iv.size(), kGcmIvBytes);
  EXPECT_NE(sealed->gcm.iv, Bytes(kGcmIvBytes, 0));
  auto opened = service_->decrypt("foo", sealed->gcm.ciphertext, sealed->gcm.iv, sealed->gcm.tag,
                                  aad, sealed->ciphertext_metadata, {}, in(2s));
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, plaintext);
}

TEST_F(FaultModuleTest, AProfileThatDoesNotMatchTheHsmFailsItsSelfTest) {
  control("iv hsm-append\n");
  start("cloudhsm");
  EXPECT_FALSE(service_->self_test("foo", in(2s)).has_value());
}

TEST_F(FaultModuleTest, AnAllZeroIvFromTheHsmIsRefused) {
  control("iv zero\n");
  start("cloudhsm");
  auto sealed = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(2s));
  ASSERT_FALSE(sealed.has_value());
  EXPECT_EQ(sealed.error().kind, HsmErrorKind::kBadIv);
}

TEST_F(FaultModuleTest, DeviceErrorsAreReportedAndTheTokenRecovers) {
  start("softhsm");
  control("fail C_Encrypt CKR_DEVICE_ERROR every 1\n");
  auto failed = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(2s));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().kind, HsmErrorKind::kUnavailable);
  EXPECT_EQ(failed.error().message, "C_Encrypt: CKR_DEVICE_ERROR");

  control("");
  // The failed session was replaced in the background; requests succeed again.
  auto recovered = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(5s));
  ASSERT_TRUE(recovered.has_value()) << recovered.error().message;
  for (int i = 0; i < 500 && pool_->counts().missing > 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(pool_->counts().missing, 0u);
  EXPECT_GE(pool_->counts().replaced, 1u);
}

TEST_F(FaultModuleTest, AnOutageWindowFailsRequestsUntilItEnds) {
  start("softhsm");
  auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
                   (std::chrono::system_clock::now() + 300ms).time_since_epoch())
                   .count();
  control("fail C_Encrypt CKR_DEVICE_REMOVED until " + std::to_string(until) + "\n");
  auto failed = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(2s));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().kind, HsmErrorKind::kUnavailable);
  // After the window (bounded wait), the token answers again.
  HsmResult<Sealed> recovered = tl::unexpected(failed.error());
  for (int i = 0; i < 100 && !recovered; ++i) {
    std::this_thread::sleep_for(20ms);
    recovered = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(2s));
  }
  ASSERT_TRUE(recovered.has_value()) << recovered.error().message;
}

TEST_F(FaultModuleTest, EveryThirdCallFailingIsRetriedWithinTheDeadline) {
  start("softhsm", 4);
  control("fail C_Encrypt CKR_SESSION_HANDLE_INVALID every 3\n");
  for (int i = 0; i < 30; ++i) {
    auto sealed = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(5s));
    ASSERT_TRUE(sealed.has_value()) << i << ": " << sealed.error().message;
  }
}

TEST_F(FaultModuleTest, ADeviceErrorIsRetriedOnAnotherSession) {
  start("softhsm", 4);
  control("fail C_Encrypt CKR_DEVICE_ERROR every 3\n");
  for (int i = 0; i < 30; ++i) {
    auto sealed = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(5s));
    ASSERT_TRUE(sealed.has_value()) << i << ": " << sealed.error().message;
  }
}

TEST_F(FaultModuleTest, WhileTheHsmIsGoneCallersFailAtOnceAndServingResumesWhenItReturns) {
  start("softhsm", 2);
  control(
      "fail C_Encrypt CKR_DEVICE_REMOVED every 1\n"
      "fail C_OpenSession CKR_DEVICE_REMOVED every 1\n");
  // The first call loses both sessions; reopening them fails.
  auto failed = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(30s));
  ASSERT_FALSE(failed.has_value());
  // No session is coming back: callers are told at once instead of waiting for their deadline.
  auto deadline = in(30s);
  auto unavailable = service_->encrypt("foo", Bytes(16, 1), {}, {}, deadline);
  ASSERT_FALSE(unavailable.has_value());
  EXPECT_EQ(unavailable.error().kind, HsmErrorKind::kUnavailable);
  EXPECT_LT(SessionPool::Clock::now(), deadline);
  control("");
  HsmResult<Sealed> recovered = tl::unexpected(failed.error());
  for (int i = 0; i < 200 && !recovered; ++i) {
    std::this_thread::sleep_for(20ms);
    recovered = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(2s));
  }
  ASSERT_TRUE(recovered.has_value()) << recovered.error().message;
}

TEST_F(FaultModuleTest, ASlowHsmMakesLaterRequestsFailBusyAtTheirDeadline) {
  start("softhsm", 1);
  control("delay C_Encrypt 500\n");
  std::thread slow([&] { (void)service_->encrypt("foo", Bytes(16, 1), {}, {}, in(5s)); });
  // Wait until the slow request holds the only session.
  for (int i = 0; i < 500 && pool_->counts().busy == 0; ++i)
    std::this_thread::sleep_for(1ms);
  auto late = service_->encrypt("foo", Bytes(16, 1), {}, {}, in(50ms));
  slow.join();
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().kind, HsmErrorKind::kBusy);
}

TEST_F(FaultModuleTest, ARejectedLoginFailsStartUp) {
  control("fail C_Login CKR_PIN_INCORRECT every 1\n");
  pool_.reset();
  // A fresh module instance starts logged out.
  module_.reset();
  auto loaded = Pkcs11Module::load({XKS_FAULT_MODULE});
  ASSERT_TRUE(loaded.has_value());
  module_ = *loaded;
  auto pool = SessionPool::open(module_, slot_, token_.user_pin(), {.sessions = 2});
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().kind, HsmErrorKind::kLoginFailed);
}

}  // namespace
}  // namespace xks::hsm
