// One HSM token as the proxy serves it (DESIGN: an HSM fleet member): the PKCS#11 module, the
// token found by its selector, a pool of logged-in sessions, the key service with the vendor
// profile, the deep health check (run at start, then in the background once watched), the
// executor whose threads make the blocking PKCS#11 calls, and the circuit breaker with its
// prober (an open circuit is probed with the health key after each cool-down). Starting it
// self-tests the vendor profile with the health key: a backend that cannot encrypt and decrypt
// does not start.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "xks/hsm/circuit_breaker.h"
#include "xks/hsm/hsm_error.h"
#include "xks/hsm/hsm_executor.h"
#include "xks/hsm/hsm_health.h"
#include "xks/hsm/key_service.h"
#include "xks/hsm/pin.h"
#include "xks/hsm/pkcs11_module.h"
#include "xks/hsm/session_pool.h"
#include "xks/hsm/vendor_profile.h"

namespace xks::hsm {

// A token opened for use: its module, where it is, and the PIN to log in with.
struct OpenToken {
  std::shared_ptr<Pkcs11Module> module;
  TokenInfo token;
  std::string pin;
};

// Reads the PIN, loads the module and finds the token: what every command that uses an HSM
// does first. Errors name the PIN source, module or token, never the PIN.
HsmResult<OpenToken> open_token(const ModuleSpec& module, const TokenSelector& token,
                                const PinSource& pin);

struct BackendOptions {
  ModuleSpec module;
  TokenSelector token;
  PinSource pin;
  VendorProfile profile;
  std::string health_key;
  std::size_t sessions = 8;
  // Executor threads; 0: one per session, or for an in-process module one per core (at most
  // one per session); see VendorProfile.
  std::size_t workers = 0;
  CircuitBreakerOptions circuit_breaker;
  // Session events (lost, reopened) and encryption counts the HSM would not record, for logs;
  // may be empty.
  std::function<void(const std::string& event)> on_event;
  // Changes refresh_keys() saw (a version made, retired, a key disabled...); may be empty.
  std::function<void(const std::string& change)> on_key_change;
  // After each refresh_keys() that read the keys (their encryption counts are fresh then); may
  // be empty.
  std::function<void()> on_keys_read;
};

class Backend {
 public:
  static HsmResult<std::unique_ptr<Backend>> start(BackendOptions options);
  ~Backend();  // stop()

  // Stops the background checks and the prober, then runs what the executor holds and refuses
  // new work, then records the encryption counts: what a fleet does to every member before any
  // goes. Idempotent.
  void stop();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const TokenInfo& token() const { return token_; }
  const std::string& health_key() const { return options_.health_key; }
  SessionPool& pool() { return *pool_; }
  KeyService& keys() { return *keys_; }
  HsmHealth& health() { return *health_; }
  HsmExecutor& executor() { return *executor_; }
  CircuitBreaker& circuit() { return *circuit_; }

  // Records the encryption counts that are due (`record_all`: every one), then reads the keys
  // it has served again (versions made or retired, keys disabled or enabled since), telling
  // BackendOptions::on_key_change; the health checks do it every 10 s.
  HsmResult<void> refresh_keys(bool record_all = false);
  // Has the health-check thread (watch_health) record every encryption count and refresh the
  // keys now, without waiting for it: for a signal handler, which must not wait on the HSM.
  void request_key_refresh();
  // When the keys were last read again (refresh_keys finished), or the epoch if never.
  std::chrono::system_clock::time_point keys_read_at() const;

  // The labels of the token's secret keys (its external key ids), read through the pool.
  HsmResult<std::vector<std::string>> key_labels();

  // Checks health every 10 s in the background from now on, calling `on_change` (on that
  // thread) when the state changes. Call once.
  void watch_health(std::function<void(HealthState state, const std::string& detail)> on_change);
  // Calls `on_change` (on the thread that caused it) when the circuit changes state.
  void watch_circuit(CircuitBreaker::OnChange on_change);

 private:
  explicit Backend(BackendOptions options) : options_(std::move(options)) {}
  void check_health_periodically(std::stop_token stop,
                                 std::function<void(HealthState, const std::string&)> on_change);
  void circuit_changed(CircuitState from, CircuitState to);
  void probe_open_circuit(std::stop_token stop);
  void record_encryptions(bool all);

  BackendOptions options_;
  TokenInfo token_;
  std::shared_ptr<Pkcs11Module> module_;
  std::unique_ptr<SessionPool> pool_;
  std::unique_ptr<KeyService> keys_;
  std::unique_ptr<HsmHealth> health_;
  std::unique_ptr<CircuitBreaker> circuit_;
  std::mutex circuit_mutex_;
  std::condition_variable_any circuit_wake_;
  CircuitBreaker::OnChange circuit_listener_;
  std::atomic<std::int64_t> keys_read_at_{0};  // system_clock nanoseconds
  std::mutex refresh_mutex_;
  std::condition_variable_any refresh_wake_;
  bool refresh_requested_ = false;
  std::mutex record_failure_mutex_;
  std::string record_failure_;             // the last failure to record counts, logged once
  std::unique_ptr<HsmExecutor> executor_;  // joined before the members it uses go
  std::jthread prober_;
  std::jthread health_checks_;  // last: stopped first
};

}  // namespace xks::hsm
