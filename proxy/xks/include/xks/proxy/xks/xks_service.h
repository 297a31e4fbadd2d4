// The four XKS APIs over the HSM layer, in this order of checks: route and SigV4 (401; a path
// that names no API is 404 only to a caller authenticated for that prefix), method (405), body
// (400), then for key operations: the kill switch (403), the key list (404), the rules (403),
// the quota (429), then the HSM. GetHealthStatus is never gated.
//
// Deadlines: every request is answered by its deadline. Route, SigV4 and the body are checked
// on the calling (I/O) thread; only the HSM work crosses to the HSM executor. If that work has
// not finished at the deadline, a watch thread answers 503 DependencyTimeoutException and the
// late result, when it comes, is discarded and counted. HSM work whose deadline has passed is
// not started (the checks sit before the session wait and before each PKCS#11 call). An
// in-process module's calls run inline on the I/O thread (hsm::HsmExecutor) for HTTP/1.1: no
// hop, and no watch when every member calls inline.
//
// Fleet: the HSM work goes to the member hsm::Fleet chooses (usable, holding the key, least
// busy). A result that says the member did not answer is counted by its circuit and the work
// goes to another usable member while the deadline allows; so does every deadline answer. When
// no member is usable, requests that need the HSM fail at once with 503
// DependencyTimeoutException. GetHealthStatus lists every member, UNAVAILABLE while its circuit
// is not closed.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xks/hsm/fleet.h"
#include "xks/proxy/config/config.h"
#include "xks/proxy/ops/audit_log.h"
#include "xks/proxy/transport/application.h"
#include "xks/proxy/transport/http_message.h"
#include "xks/proxy/xks/audit_record.h"
#include "xks/proxy/xks/authorization.h"
#include "xks/proxy/xks/outcome.h"
#include "xks/proxy/xks/xks_metrics.h"
#include "xks/sigv4/verifier.h"

namespace xks::proxy {

class Quota;

// One key store as served, built from its KeyStoreConfig and replaced whole on reload.
struct KeyStore {
  std::string prefix;  // "" or "/name[/name...]", without "/kms/xks/v1"
  std::shared_ptr<const sigv4::Verifier> verifier;
  KeyStorePolicy policy;
  std::shared_ptr<Quota> quota;  // null: no quota
  XksMetrics::KeyStoreSeries series;
  hsm::KeyUse key_use;  // whether keys the HSM does not protect may serve
};

struct ProxyIdentity {
  int fleet_size = 1;
  std::string vendor = "xks-proxy project";
  std::string model = "xks-proxy";
};

class DeadlineWatch;

class XksService {
 public:
  using Clock = hsm::SessionPool::Clock;
  using Deadline = hsm::KeyService::Deadline;

  // `metrics` and `audit` may be null (nothing recorded).
  XksService(const std::vector<KeyStoreConfig>& key_stores, hsm::Fleet& fleet,
             ProxyIdentity identity, XksMetrics* metrics = nullptr, AuditLog* audit = nullptr);
  ~XksService();
  // Shutting down: stops the deadline watch, so that it no longer touches the fleet, which may
  // then go (running the HSM work it still holds, which needs this service). handle() must not
  // be called afterwards.
  void stop_deadline_watch();
  XksService(const XksService&) = delete;
  XksService& operator=(const XksService&) = delete;

  // Serves these key stores from now on (credentials, keys, rules, quotas, kill switch), all
  // at once: a request under way finishes with the key stores it started with. A key store
  // whose quota is unchanged keeps its buckets. Audits and logs each kill switch change.
  void reconfigure(const std::vector<KeyStoreConfig>& key_stores);

  // Calls `respond` exactly once: at once for answers that need no HSM, otherwise from the HSM
  // executor or, at `deadline`, from the deadline watch. `received` is when the request was
  // read in full: latency is measured from there.
  void handle(HttpRequest request, Clock::time_point received, Deadline deadline,
              Respond respond) const;
  // The answer to a request the transport refused (malformed, over a limit): counted like any
  // other answer and recorded as an unauthenticated request is (sampled).
  HttpResponse refuse(HttpRefusal reason, const std::string& client_address) const;

 private:
  struct Exchange;
  struct HsmWork;
  struct HsmAnswer;

  struct Served;  // the key stores of one configuration

  std::shared_ptr<const Served> build(const std::vector<KeyStoreConfig>& key_stores,
                                      const Served* previous) const;
  // The answer when it needs no HSM; otherwise the HSM work, with the outcome so far.
  std::optional<HttpResponse> prepare(const Served& served, const HttpRequest& request,
                                      XksOutcome& outcome, std::optional<HsmWork>& work) const;
  // Kill switch, key list and rules; the refusal, if any.
  std::optional<HttpResponse> authorize(const KeyStore& store, wire::Operation operation,
                                        std::string_view key_id, XksOutcome& outcome) const;
  // The quota's token, or the refusal.
  std::optional<HttpResponse> admit(const KeyStore& store, std::string_view key_id,
                                    XksOutcome& outcome) const;
  HsmAnswer call_hsm(const HsmWork& work, Deadline deadline, hsm::KeyService& keys) const;
  void submit(std::shared_ptr<Exchange> exchange, HsmWork work) const;
  void attempt(std::shared_ptr<Exchange> exchange, std::shared_ptr<const HsmWork> work,
               std::size_t member, hsm::Fleet::Tried tried) const;
  void finish(Exchange& exchange, HttpResponse response) const;
  static bool runs_inline(const Exchange& exchange);  // where the member allows it
  AuditRecord audit_record(XksOutcome& outcome, const HttpRequest& request, double seconds) const;
  // The key store whose credential the request's Authorization names (the first if none).
  static const KeyStore& key_store_of(const Served& served, const HttpRequest& request);

  hsm::Fleet& fleet_;
  std::vector<std::string> health_keys_;  // never served
  bool threaded_members_ = false;         // some member never calls inline
  ProxyIdentity identity_;
  XksMetrics* metrics_;
  AuditLog* audit_;
  std::atomic<std::shared_ptr<const Served>> served_;
  std::mutex reconfigure_mutex_;          // one reconfiguration at a time
  std::unique_ptr<DeadlineWatch> watch_;  // last: stopped first
};

}  // namespace xks::proxy
