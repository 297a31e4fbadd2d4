// Opening an HSM token and keeping it ready for the proxy.
#include "xks/hsm/backend.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace xks::hsm {

namespace {

std::size_t executor_threads(const BackendOptions& options) {
  if (options.workers != 0)
    return options.workers;
  if (!options.profile.in_process)
    return options.sessions;
  std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::min(cores, options.sessions);
}

// An in-process module's calls may also run on the caller's thread (see HsmExecutor), unless
// `workers` asks for threads.
bool inline_calls(const BackendOptions& options) {
  return options.profile.in_process && options.workers == 0;
}

HsmError with_context(HsmError error, const std::string& context) {
  error.message = context + ": " + error.message;
  return error;
}

}  // namespace

HsmResult<OpenToken> open_token(const ModuleSpec& module, const TokenSelector& token,
                                const PinSource& pin) {
  auto read = read_pin(pin);
  if (!read)
    return tl::unexpected(read.error());
  auto loaded = Pkcs11Module::load(module);
  if (!loaded)
    return tl::unexpected(loaded.error());
  auto found = (*loaded)->find_token(token);
  if (!found)
    return tl::unexpected(found.error());
  OpenToken opened{*loaded, *found, std::move(*read)};
  wipe(*read);  // what the move left behind
  return opened;
}

HsmResult<std::unique_ptr<Backend>> Backend::start(BackendOptions options) {
  std::unique_ptr<Backend> backend(new Backend(std::move(options)));
  const BackendOptions& o = backend->options_;
  auto opened = open_token(o.module, o.token, o.pin);
  if (!opened)
    return tl::unexpected(opened.error());
  backend->module_ = opened->module;
  backend->token_ = opened->token;
  auto pool = SessionPool::open(backend->module_, backend->token_.slot_id, std::move(opened->pin),
                                {.sessions = o.sessions, .on_event = o.on_event});
  wipe(opened->pin);
  if (!pool)
    return tl::unexpected(with_context(pool.error(), "HSM token '" + backend->token_.label + "'"));
  backend->pool_ = std::move(*pool);
  backend->keys_ = std::make_unique<KeyService>(*backend->pool_, o.profile);
  if (!o.profile.token_data_objects && o.on_event) {
    o.on_event("HSM token '" + backend->token_.label + "' keeps no data objects (vendor profile '" +
               o.profile.name + "'): the keys' encryption counts are this process's only");
  }

  auto deadline = SessionPool::Clock::now() + std::chrono::seconds(10);
  if (auto tested = backend->keys_->self_test(o.health_key, deadline); !tested) {
    return tl::unexpected(with_context(tested.error(), "self-test of vendor profile '" +
                                                           o.profile.name + "' with health key '" +
                                                           o.health_key + "' failed"));
  }
  backend->health_ =
      std::make_unique<HsmHealth>(*backend->keys_, o.health_key, backend->token_, HealthOptions{});
  backend->health_->check(deadline);
  backend->circuit_ = std::make_unique<CircuitBreaker>(o.circuit_breaker);
  Backend* raw = backend.get();
  backend->circuit_->on_change(
      [raw](CircuitState from, CircuitState to) { raw->circuit_changed(from, to); });
  backend->prober_ = std::jthread([raw](std::stop_token stop) { raw->probe_open_circuit(stop); });
  // Queue bound: a few deadlines' worth of work per session; beyond that, shed at once.
  backend->executor_ =
      std::make_unique<HsmExecutor>(executor_threads(o), 64 * o.sessions, inline_calls(o));
  return backend;
}

Backend::~Backend() {
  stop();
}

void Backend::stop() {
  for (std::jthread* thread : {&health_checks_, &prober_}) {
    thread->request_stop();
    if (thread->joinable())
      thread->join();
  }
  if (executor_) {
    executor_->stop();
    record_encryptions(true);
  }
}

void Backend::record_encryptions(bool all) {
  auto recorded = keys_->record_encryptions(all);
  std::string failure = recorded ? "" : recorded.error().message;
  std::lock_guard lock(record_failure_mutex_);
  if (failure != record_failure_ && !failure.empty() && options_.on_event)
    options_.on_event("encryption counts not recorded on the token (retried): " + failure);
  record_failure_ = failure;
}

void Backend::watch_health(
    std::function<void(HealthState state, const std::string& detail)> on_change) {
  health_checks_ = std::jthread([this, on_change = std::move(on_change)](std::stop_token stop) {
    check_health_periodically(stop, on_change);
  });
}

HsmResult<void> Backend::refresh_keys(bool record_all) {
  // Recorded first, so that the reading after it shows the counts.
  record_encryptions(record_all);
  auto refreshed = keys_->refresh_keys(
      [this](const std::string& change) {
        if (options_.on_key_change)
          options_.on_key_change(change);
      },
      SessionPool::Clock::now() + std::chrono::seconds(5));
  if (refreshed) {
    keys_read_at_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
    if (options_.on_keys_read)
      options_.on_keys_read();
  }
  return refreshed;
}

void Backend::request_key_refresh() {
  {
    std::lock_guard lock(refresh_mutex_);
    refresh_requested_ = true;
  }
  refresh_wake_.notify_all();
}

std::chrono::system_clock::time_point Backend::keys_read_at() const {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(keys_read_at_.load())));
}

HsmResult<std::vector<std::string>> Backend::key_labels() {
  auto lease = pool_->acquire(SessionPool::Clock::now() + std::chrono::seconds(10));
  if (!lease)
    return tl::unexpected(lease.error());
  CK_FUNCTION_LIST& api = pool_->api();
  auto handles = find_secret_keys(api, lease->handle(), std::nullopt);
  if (!handles)
    return tl::unexpected(handles.error());
  std::vector<std::string> labels;
  for (CK_OBJECT_HANDLE handle : *handles) {
    auto label = read_label(api, lease->handle(), handle);
    if (!label)
      return tl::unexpected(label.error());
    labels.push_back(std::move(*label));
  }
  return labels;
}

void Backend::watch_circuit(CircuitBreaker::OnChange on_change) {
  std::lock_guard lock(circuit_mutex_);
  circuit_listener_ = std::move(on_change);
}

void Backend::circuit_changed(CircuitState from, CircuitState to) {
  CircuitBreaker::OnChange listener;
  {
    // Under the prober's lock, so that the prober cannot miss the change between its check
    // and its wait.
    std::lock_guard lock(circuit_mutex_);
    listener = circuit_listener_;
  }
  circuit_wake_.notify_all();
  if (listener)
    listener(from, to);
}

// While the circuit is open: after each cool-down, one probe with the health key decides.
void Backend::probe_open_circuit(std::stop_token stop) {
  constexpr auto kProbeDeadline = std::chrono::seconds(1);
  std::unique_lock lock(circuit_mutex_);
  while (!stop.stop_requested()) {
    auto at = circuit_->probe_at();
    if (!at) {
      circuit_wake_.wait(lock, stop, [this] { return circuit_->probe_at().has_value(); });
      continue;
    }
    circuit_wake_.wait_until(lock, stop, *at, [] { return false; });
    // Transitions call back into circuit_changed(), which takes this lock.
    lock.unlock();
    if (!stop.stop_requested() && circuit_->begin_probe()) {
      // A probe answered after its deadline is a failure too: the HSM is still hanging.
      auto deadline = SessionPool::Clock::now() + kProbeDeadline;
      auto probed = keys_->self_test(options_.health_key, deadline);
      circuit_->end_probe(probed.has_value() && SessionPool::Clock::now() <= deadline);
    }
    lock.lock();
  }
}

// Deep health in the background, so that GetHealthStatus and /readyz answer from a fresh
// report without waiting on the HSM; and the keys' versions and states read again.
void Backend::check_health_periodically(
    std::stop_token stop, std::function<void(HealthState, const std::string&)> on_change) {
  constexpr auto kInterval = std::chrono::seconds(10);
  constexpr auto kTimeout = std::chrono::seconds(5);
  HealthState previous = health_->last().state;
  std::unique_lock lock(refresh_mutex_);
  while (!stop.stop_requested()) {
    bool requested =
        refresh_wake_.wait_for(lock, stop, kInterval, [this] { return refresh_requested_; });
    if (stop.stop_requested())
      break;
    refresh_requested_ = false;
    lock.unlock();
    if (!requested) {
      HealthReport report = health_->check(SessionPool::Clock::now() + kTimeout);
      if (report.state != previous) {
        if (on_change)
          on_change(report.state, report.detail);
        previous = report.state;
      }
    }
    (void)refresh_keys(requested);  // a failure is the health check's to report
    lock.lock();
  }
}

}  // namespace xks::hsm
