// The four XKS APIs over the HSM layer, in the order of checks of DESIGN.md: route (404 before
// authentication), SigV4 (401), method (405), body (400), key allow-list (404), then the HSM
// with the request's deadline. Blocking: transports call it off their I/O threads.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "xks/hsm/hsm_health.h"
#include "xks/hsm/key_service.h"
#include "xks/proxy/ops/audit_log.h"
#include "xks/proxy/transport/http_message.h"
#include "xks/proxy/xks/request_metadata.h"
#include "xks/proxy/xks/xks_error.h"
#include "xks/proxy/xks/xks_operation.h"
#include "xks/sigv4/verifier.h"

namespace xks::proxy {

struct KeyStore {
  std::string prefix;  // "" or "/name[/name...]", without "/kms/xks/v1"
  std::shared_ptr<const sigv4::Verifier> verifier;
  std::optional<std::unordered_set<std::string>> allowed_key_ids;  // nullopt: every key
};

// What happened to one request, for metrics and the audit log.
struct XksOutcome {
  std::optional<std::size_t> keystore;    // set once routed
  std::optional<XksOperation> operation;  // set once routed
  std::optional<XksError> error;          // unset: success
  std::optional<sigv4::Failure> auth_failure;
  CK_RV hsm_rv = CKR_OK;     // the PKCS#11 code behind an HSM error
  double hsm_seconds = -1;   // time spent at the HSM layer; < 0: none
  int status = 0;            // HTTP status of the answer
  std::string key_id;        // external key id, once routed
  RequestMetadata metadata;  // once the body parsed
};

class ProxyMetrics;

struct ProxyIdentity {
  int fleet_size = 1;
  std::string vendor = "xks-proxy project";
  std::string model = "xks-proxy";
};

class XksService {
 public:
  using Deadline = hsm::KeyService::Deadline;

  using Clock = hsm::SessionPool::Clock;

  // `metrics` and `audit` may be null (nothing recorded).
  XksService(std::vector<KeyStore> key_stores, hsm::KeyService& keys, hsm::HsmHealth& health,
             ProxyIdentity identity, ProxyMetrics* metrics = nullptr, AuditLog* audit = nullptr);

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
  ProxyMetrics* metrics_;
  AuditLog* audit_;
};

}  // namespace xks::proxy
