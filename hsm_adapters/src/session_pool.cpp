// The session pool and its background replacer.
#include "xks/hsm/session_pool.h"

#include <string.h>  // explicit_bzero

#include <algorithm>

#include "xks/hsm/pin.h"
#include "xks/hsm/session.h"

namespace xks::hsm {

SessionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      handle_(other.handle_),
      discard_(other.discard_),
      reason_(std::move(other.reason_)) {}

SessionPool::Lease::~Lease() {
  if (pool_ != nullptr)
    pool_->give_back(handle_, discard_, reason_);
}

void SessionPool::Lease::report(const HsmError& error) {
  if (error.kind == HsmErrorKind::kSessionLost || error.kind == HsmErrorKind::kUnavailable) {
    discard_ = true;
    reason_ = error.message;
  }
}

SessionPool::SessionPool(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot, std::string&& pin,
                         SessionPoolOptions options)
    : module_(std::move(module)), slot_(slot), pin_(std::move(pin)), options_(options) {
  wipe(pin);  // what the move left behind
}

HsmResult<std::unique_ptr<SessionPool>> SessionPool::open(std::shared_ptr<Pkcs11Module> module,
                                                          CK_SLOT_ID slot, std::string pin,
                                                          SessionPoolOptions options) {
  std::unique_ptr<SessionPool> pool(
      new SessionPool(std::move(module), slot, std::move(pin), options));
  wipe(pin);  // what the move left behind
  pool->options_.sessions = std::max<std::size_t>(options.sessions, 1);
  for (std::size_t i = 0; i < pool->options_.sessions; ++i) {
    auto session = pool->open_session();
    if (!session)
      return tl::unexpected(session.error());
    pool->idle_.push_back(*session);
  }
  pool->replacer_ = std::jthread(
      [raw = pool.get()](std::stop_token stop) { raw->replace_missing(std::move(stop)); });
  return pool;
}

SessionPool::~SessionPool() {
  replacer_.request_stop();
  if (replacer_.joinable())
    replacer_.join();
  for (CK_SESSION_HANDLE handle : idle_)
    api().C_CloseSession(handle);
  explicit_bzero(pin_.data(), pin_.size());
}

HsmResult<CK_SESSION_HANDLE> SessionPool::open_session() {
  // Read-only sessions: crypto needs no more, and some HSMs limit read-write ones.
  auto session = open_logged_in_session(api(), slot_, 0, pin_);
  if (!session && session.error().kind == HsmErrorKind::kLoginFailed) {
    std::lock_guard lock(mutex_);
    ++counts_.failed_logins;
  }
  return session;
}

HsmResult<void> SessionPool::with_read_write_session(
    const std::function<HsmResult<void>(CK_SESSION_HANDLE)>& use) {
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  if (CK_RV rv = api().C_OpenSession(slot_, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                                     &session);
      rv != CKR_OK) {
    return tl::unexpected(HsmError::from_rv("C_OpenSession", rv));
  }
  struct Close {
    CK_FUNCTION_LIST& api;
    CK_SESSION_HANDLE session;
    ~Close() { api.C_CloseSession(session); }
  } close{api(), session};
  CK_SESSION_INFO info{};
  if (CK_RV rv = api().C_GetSessionInfo(session, &info); rv != CKR_OK)
    return tl::unexpected(HsmError::from_rv("C_GetSessionInfo", rv));
  if (info.state != CKS_RW_USER_FUNCTIONS)
    return tl::unexpected(
        HsmError{HsmErrorKind::kSessionLost, CKR_OK, "the token is not logged in"});
  return use(session);
}

HsmResult<SessionPool::Lease> SessionPool::acquire(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  auto none_coming = [this] { return counts_.busy == 0 && reopen_failing_; };
  if (!idle_available_.wait_until(lock, deadline,
                                  [&] { return !idle_.empty() || none_coming(); }) ||
      idle_.empty()) {
    if (counts_.busy == 0) {
      return tl::unexpected(HsmError{HsmErrorKind::kUnavailable, CKR_OK,
                                     "no open HSM session: the token is being reconnected"});
    }
    return tl::unexpected(
        HsmError{HsmErrorKind::kBusy, CKR_OK, "every HSM session stayed busy until the deadline"});
  }
  CK_SESSION_HANDLE handle = idle_.back();
  idle_.pop_back();
  ++counts_.busy;
  return Lease(this, handle);
}

void SessionPool::event(const std::string& what) const {
  if (options_.on_event)
    options_.on_event(what);
}

void SessionPool::give_back(CK_SESSION_HANDLE handle, bool discard, const std::string& reason) {
  if (discard) {
    api().C_CloseSession(handle);
    event("HSM session dropped (" + reason + "); reopening it in the background");
  }
  std::lock_guard lock(mutex_);
  --counts_.busy;
  if (discard) {
    ++counts_.missing;
    missing_changed_.notify_one();
    // Callers waiting for a session learn at once when none can come back soon.
    if (counts_.busy == 0 && reopen_failing_)
      idle_available_.notify_all();
  } else {
    idle_.push_back(handle);
    idle_available_.notify_one();
  }
}

void SessionPool::replace_missing(std::stop_token stop) {
  std::chrono::milliseconds login_retry = options_.first_retry;
  std::chrono::milliseconds device_retry = options_.first_device_retry;
  std::unique_lock lock(mutex_);
  while (missing_changed_.wait(lock, stop, [this] { return counts_.missing > 0; })) {
    lock.unlock();
    auto session = open_session();
    lock.lock();
    if (session) {
      idle_.push_back(*session);
      --counts_.missing;
      ++counts_.replaced;
      reopen_failing_ = false;
      login_retry = options_.first_retry;
      device_retry = options_.first_device_retry;
      idle_available_.notify_one();
      lock.unlock();
      event("HSM session reopened");
      lock.lock();
      continue;
    }
    // Callers waiting for a session learn at once that none is coming.
    reopen_failing_ = true;
    idle_available_.notify_all();
    // Back off: never hammer a failing HSM, and never retry a wrong PIN quickly.
    bool login = session.error().kind == HsmErrorKind::kLoginFailed;
    std::chrono::milliseconds& retry = login ? login_retry : device_retry;
    std::chrono::milliseconds wait = retry;
    retry = std::min(retry * 2, login ? options_.max_retry : options_.max_device_retry);
    lock.unlock();
    event("reopening an HSM session failed (" + session.error().message + "); retrying in " +
          std::to_string(wait.count()) + " ms");
    lock.lock();
    missing_changed_.wait_for(lock, stop, wait, [] { return false; });
  }
}

SessionPool::Counts SessionPool::counts() const {
  std::lock_guard lock(mutex_);
  Counts counts = counts_;
  counts.idle = idle_.size();
  return counts;
}

}  // namespace xks::hsm
