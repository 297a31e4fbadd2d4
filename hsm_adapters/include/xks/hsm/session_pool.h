// Logged-in PKCS#11 sessions on one token, handed out one caller at a time. A session that
// fails with a session, device or login error is discarded and replaced in the background;
// failed logins back off exponentially so that a wrong PIN never locks the partition.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "xks/hsm/hsm_error.h"
#include "xks/hsm/pkcs11_module.h"

namespace xks::hsm {

struct SessionPoolOptions {
  std::size_t sessions = 8;
  // After a failed login: slow, so that a wrong PIN never locks the partition.
  std::chrono::milliseconds first_retry{1000};
  std::chrono::milliseconds max_retry{std::chrono::minutes{5}};
  // After any other failed reopen (the HSM unreachable): short, so that serving resumes within
  // about half a second of the HSM's return. The first reopen is always tried at once.
  std::chrono::milliseconds first_device_retry{50};
  std::chrono::milliseconds max_device_retry{400};
  // Told about sessions dropped and reopened and failed reconnects (with CKR names), for the
  // operational log; called without the pool's lock held.
  std::function<void(const std::string&)> on_event = nullptr;
};

class SessionPool {
 public:
  using Clock = std::chrono::steady_clock;

  // A session lent to one caller; returned to the pool when destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    CK_SESSION_HANDLE handle() const { return handle_; }
    // Keeps the session out of the pool if `error` means it is unusable.
    void report(const HsmError& error);

   private:
    friend class SessionPool;
    Lease(SessionPool* pool, CK_SESSION_HANDLE handle) : pool_(pool), handle_(handle) {}

    SessionPool* pool_;
    CK_SESSION_HANDLE handle_;
    bool discard_ = false;
    std::string reason_;  // why it was discarded
  };

  struct Counts {
    std::size_t idle = 0;
    std::size_t busy = 0;
    std::size_t missing = 0;        // being replaced
    std::size_t failed_logins = 0;  // since start
    std::size_t replaced = 0;       // sessions reopened since start
  };

  // Opens and logs in every session now; any failure fails start-up (one login attempt).
  static HsmResult<std::unique_ptr<SessionPool>> open(std::shared_ptr<Pkcs11Module> module,
                                                      CK_SLOT_ID slot, std::string pin,
                                                      SessionPoolOptions options);
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  // An idle session, waiting for one until `deadline`; then kBusy. kUnavailable at once when
  // no session is open at all and reopening them is failing (the token is gone).
  HsmResult<Lease> acquire(Clock::time_point deadline);

  // Runs `use` with a read-write session of its own (opened, then closed), for the rare write
  // to the token (recording encryption counts). Never logs in: kSessionLost when the token is
  // logged out (the pool's own reopening, with its back-off, logs in again).
  HsmResult<void> with_read_write_session(
      const std::function<HsmResult<void>(CK_SESSION_HANDLE)>& use);

  Counts counts() const;
  std::size_t size() const { return options_.sessions; }
  CK_FUNCTION_LIST& api() const { return module_->api(); }

 private:
  SessionPool(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot, std::string&& pin,
              SessionPoolOptions options);

  HsmResult<CK_SESSION_HANDLE> open_session();  // opened and logged in
  void give_back(CK_SESSION_HANDLE handle, bool discard, const std::string& reason);
  void event(const std::string& what) const;
  void replace_missing(std::stop_token stop);

  std::shared_ptr<Pkcs11Module> module_;
  CK_SLOT_ID slot_;
  std::string pin_;
  SessionPoolOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable idle_available_;
  std::condition_variable_any missing_changed_;
  std::vector<CK_SESSION_HANDLE> idle_;
  Counts counts_;
  bool reopen_failing_ = false;  // the last reopen failed: nothing will come back soon
  std::jthread replacer_;        // last: stopped and joined before the members it uses go
};

}  // namespace xks::hsm
