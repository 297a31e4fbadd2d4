// The four XKS APIs over the HSM layer, in the order of checks of DESIGN.md: route (404 before
// authentication), SigV4 (401), method (405), body (400), key allow-list (404), then the HSM.
//
// Deadlines: every request is answered by its deadline. Route, SigV4 and the body are checked
// on the calling (I/O) thread; only the HSM work crosses to the HSM executor. If that work has
// not finished at the deadline, a watch thread answers 503 DependencyTimeoutException and the
// late result, when it comes, is discarded and counted. HSM work whose deadline has passed is
// not started (the checks sit before the session wait and before each PKCS#11 call).
//
// Circuit breaker: each HSM result (and each deadline answer) is counted by the backend's
// circuit; while it is not closed, requests that need the HSM fail at once with 503
// DependencyTimeoutException, and GetHealthStatus reports the HSM UNAVAILABLE.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "xks/hsm/circuit_breaker.h"
#include "xks/hsm/hsm_executor.h"
#include "xks/hsm/hsm_health.h"
#include "xks/hsm/key_service.h"
#include "xks/proxy/ops/audit_log.h"
#include "xks/proxy/transport/application.h"
#include "xks/proxy/transport/http_message.h"
#include "xks/proxy/xks/audit_record.h"
#include "xks/proxy/xks/outcome.h"
#include "xks/proxy/xks/xks_metrics.h"
#include "xks/sigv4/verifier.h"

namespace xks::proxy {

struct KeyStore {
  std::string prefix;  // "" or "/name[/name...]", without "/kms/xks/v1"
  std::shared_ptr<const sigv4::Verifier> verifier;
  std::optional<std::unordered_set<std::string>> allowed_key_ids;  // nullopt: every key
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
  XksService(std::vector<KeyStore> key_stores, hsm::KeyService& keys, hsm::HsmHealth& health,
             hsm::HsmExecutor& executor, hsm::CircuitBreaker& circuit, ProxyIdentity identity,
             XksMetrics* metrics = nullptr, AuditLog* audit = nullptr);
  ~XksService();  // stops the deadline watch; HSM work still queued must be run or gone first
  XksService(const XksService&) = delete;
  XksService& operator=(const XksService&) = delete;

  // Calls `respond` exactly once: at once for answers that need no HSM, otherwise from the HSM
  // executor or, at `deadline`, from the deadline watch. `received` is when the request was
  // read in full: latency is measured from there.
  void handle(HttpRequest request, Clock::time_point received, Deadline deadline,
              Respond respond) const;

 private:
  struct Exchange;
  struct HsmWork;
  struct HsmAnswer;

  // The answer when it needs no HSM; otherwise the HSM work, with the outcome so far.
  std::optional<HttpResponse> prepare(const HttpRequest& request, XksOutcome& outcome,
                                      std::optional<HsmWork>& work) const;
  HsmAnswer call_hsm(const HsmWork& work, Deadline deadline) const;
  void submit(std::shared_ptr<Exchange> exchange, HsmWork work) const;
  void finish(Exchange& exchange, HttpResponse response) const;
  AuditRecord audit_record(XksOutcome& outcome, const HttpRequest& request, double seconds) const;

  std::vector<KeyStore> key_stores_;
  std::vector<std::string> prefixes_;
  hsm::KeyService& keys_;
  hsm::HsmHealth& health_;
  hsm::HsmExecutor& executor_;
  hsm::CircuitBreaker& circuit_;
  ProxyIdentity identity_;
  XksMetrics* metrics_;
  AuditLog* audit_;
  std::unique_ptr<DeadlineWatch> watch_;  // last: stopped first
};

}  // namespace xks::proxy
