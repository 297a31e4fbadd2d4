// The four XKS APIs over the HSM layer, in the order of checks of DESIGN.md: route (404 before
// authentication), SigV4 (401), method (405), body (400), key allow-list (404), then the HSM
// with the request's deadline. Blocking: app/ calls it on the HSM executor, off the I/O threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "xks/hsm/hsm_health.h"
#include "xks/hsm/key_service.h"
#include "xks/proxy/ops/audit_log.h"
#include "xks/proxy/transport/http_message.h"
#include "xks/proxy/xks/audit_record.h"
#include "xks/proxy/xks/outcome.h"
#include "xks/proxy/xks/xks_error.h"
#include "xks/sigv4/verifier.h"
#include "xks/wire/operation.h"
#include "xks/wire/request_metadata.h"

namespace xks::proxy {

struct KeyStore {
  std::string prefix;  // "" or "/name[/name...]", without "/kms/xks/v1"
  std::shared_ptr<const sigv4::Verifier> verifier;
  std::optional<std::unordered_set<std::string>> allowed_key_ids;  // nullopt: every key
};

// Told what happened to each request, with its latency in seconds (the metrics).
using OutcomeObserver = std::function<void(const XksOutcome& outcome, double seconds)>;

struct ProxyIdentity {
  int fleet_size = 1;
  std::string vendor = "xks-proxy project";
  std::string model = "xks-proxy";
};

class XksService {
 public:
  using Deadline = hsm::KeyService::Deadline;

  using Clock = hsm::SessionPool::Clock;

  // `observe` may be empty and `audit` null (nothing recorded).
  XksService(std::vector<KeyStore> key_stores, hsm::KeyService& keys, hsm::HsmHealth& health,
             ProxyIdentity identity, OutcomeObserver observe = {}, AuditLog* audit = nullptr);

  // `received` is when the request was read in full: latency is measured from there.
  HttpResponse handle(const HttpRequest& request, Clock::time_point received,
                      Deadline deadline) const;

 private:
  HttpResponse answer(const HttpRequest& request, Deadline deadline, XksOutcome& outcome) const;
  AuditRecord audit_record(XksOutcome& outcome, const HttpRequest& request, double seconds) const;

  std::vector<KeyStore> key_stores_;
  std::vector<std::string> prefixes_;
  hsm::KeyService& keys_;
  hsm::HsmHealth& health_;
  ProxyIdentity identity_;
  OutcomeObserver observe_;
  AuditLog* audit_;
};

}  // namespace xks::proxy
