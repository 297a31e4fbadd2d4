// The session pool on the real SoftHSM: lending, deadlines, replacement of lost sessions, and
// login back-off.
#include "xks/hsm/session_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "hsm_fixture.h"
#include "xks/hsm/key_service.h"
#include "xks/hsm/session.h"

namespace xks::hsm {
namespace {

using namespace std::chrono_literals;

class SessionPoolTest : public test::HsmFixture {
 protected:
  // Waits (bounded) until the pool has no session missing.
  bool wait_until_replaced() {
    for (int i = 0; i < 500 && pool_->counts().missing > 0; ++i)
      std::this_thread::sleep_for(10ms);
    return pool_->counts().missing == 0;
  }

  // Makes every pooled session handle stale, as a token reset or network HSM failover does.
  void lose_every_session() { ASSERT_EQ(module_->api().C_CloseAllSessions(slot_), CKR_OK); }

  // Uses each idle session once, so that the pool finds out they are gone.
  void use_every_session() {
    std::vector<SessionPool::Lease> leases;
    while (true) {
      auto lease = pool_->acquire(in(20ms));
      if (!lease)
        break;
      leases.push_back(std::move(*lease));
    }
    for (auto& lease : leases) {
      CK_BYTE byte = 0;
      CK_RV rv = pool_->api().C_GenerateRandom(lease.handle(), &byte, 1);
      if (rv != CKR_OK)
        lease.report(HsmError::from_rv("C_GenerateRandom", rv));
    }
  }
};

TEST_F(SessionPoolTest, LendsEachSessionToOneCallerAtATime) {
  open_pool({.sessions = 3});
  std::vector<SessionPool::Lease> leases;
  std::set<CK_SESSION_HANDLE> handles;
  for (int i = 0; i < 3; ++i) {
    auto lease = pool_->acquire(in(1s));
    ASSERT_TRUE(lease.has_value()) << lease.error().message;
    handles.insert(lease->handle());
    leases.push_back(std::move(*lease));
  }
  EXPECT_EQ(handles.size(), 3u);
  EXPECT_EQ(pool_->counts().busy, 3u);
  EXPECT_EQ(pool_->counts().idle, 0u);

  auto busy = pool_->acquire(in(50ms));
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().kind, HsmErrorKind::kBusy);

  leases.pop_back();
  auto freed = pool_->acquire(in(1s));
  ASSERT_TRUE(freed.has_value()) << freed.error().message;
}

TEST_F(SessionPoolTest, AWaitingCallerGetsTheNextReturnedSession) {
  open_pool({.sessions = 1});
  auto held = pool_->acquire(in(1s));
  ASSERT_TRUE(held.has_value());
  std::thread returner([lease = std::move(*held)]() mutable {
    std::this_thread::sleep_for(50ms);
    SessionPool::Lease returned = std::move(lease);
  });
  auto waited = pool_->acquire(in(10s));
  returner.join();
  ASSERT_TRUE(waited.has_value()) << waited.error().message;
}

TEST_F(SessionPoolTest, AWrongPinFailsStartUpAtOnce) {
  auto pool = SessionPool::open(module_, slot_, "wrong-pin", {.sessions = 4});
  ASSERT_FALSE(pool.has_value());
  EXPECT_EQ(pool.error().kind, HsmErrorKind::kLoginFailed);
  EXPECT_EQ(pool.error().message, "C_Login: CKR_PIN_INCORRECT");
}

TEST_F(SessionPoolTest, LostSessionsAreReplacedAndRequestsRetried) {
  create_key("foo");
  std::mutex mutex;
  std::vector<std::string> events;
  open_pool({.sessions = 2, .on_event = [&](const std::string& what) {
               std::lock_guard lock(mutex);
               events.push_back(what);
             }});
  KeyService service(*pool_, *vendor_profile("softhsm"));
  lose_every_session();
  // The first attempt meets a dead session; the retry gets a fresh one.
  Bytes plaintext(32, 7);
  auto sealed = service.encrypt("foo", plaintext, {}, {}, in(5s));
  ASSERT_TRUE(sealed.has_value()) << sealed.error().message;
  use_every_session();
  ASSERT_TRUE(wait_until_replaced());
  EXPECT_GE(pool_->counts().replaced, 2u);
  EXPECT_EQ(pool_->counts().idle, 2u);
  auto opened = service.decrypt("foo", sealed->gcm.ciphertext, sealed->gcm.iv, sealed->gcm.tag, {},
                                sealed->ciphertext_metadata, {}, in(5s));
  ASSERT_TRUE(opened.has_value()) << opened.error().message;
  EXPECT_EQ(*opened, plaintext);
  std::lock_guard lock(mutex);
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events.front().find("CKR_SESSION_HANDLE_INVALID"), std::string::npos) << events.front();
  EXPECT_NE(std::find(events.begin(), events.end(), "HSM session reopened"), events.end());
}

TEST_F(SessionPoolTest, FailedLoginsBackOffAndRecoverOnceLoggedIn) {
  open_pool({.sessions = 1, .first_retry = 100ms, .max_retry = 400ms});
  // The operator changes the PIN on the HSM, then the token drops every session and login.
  std::string new_pin = token_.user_pin() + "9";
  {
    auto session = open_logged_in_session(module_->api(), slot_, CKF_RW_SESSION, token_.user_pin());
    ASSERT_TRUE(session.has_value());
    std::string old_pin = token_.user_pin();
    ASSERT_EQ(module_->api().C_SetPIN(
                  *session, reinterpret_cast<CK_UTF8CHAR_PTR>(old_pin.data()), old_pin.size(),
                  reinterpret_cast<CK_UTF8CHAR_PTR>(new_pin.data()), new_pin.size()),
              CKR_OK);
  }
  lose_every_session();
  use_every_session();

  std::this_thread::sleep_for(1200ms);
  auto counts = pool_->counts();
  // Retries at about 0, 0.1, 0.3, 0.7 and 1.1 s: a handful, never a storm.
  EXPECT_GE(counts.failed_logins, 2u);
  EXPECT_LE(counts.failed_logins, 6u);
  auto unavailable = pool_->acquire(in(20ms));
  ASSERT_FALSE(unavailable.has_value());
  EXPECT_EQ(unavailable.error().kind, HsmErrorKind::kUnavailable);

  // Once the application is logged in again (here by the test, with the new PIN), the next
  // retry opens a session without needing the PIN.
  auto session = open_logged_in_session(module_->api(), slot_, 0, new_pin);
  ASSERT_TRUE(session.has_value()) << session.error().message;
  ASSERT_TRUE(wait_until_replaced());
  EXPECT_TRUE(pool_->acquire(in(1s)).has_value());
}

}  // namespace
}  // namespace xks::hsm
