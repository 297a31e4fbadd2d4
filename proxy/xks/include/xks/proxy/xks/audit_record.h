// What the audit log records of one XKS request (DESIGN "Audit log"): the request's metadata
// (kmsRequestId first), key store, key, operation, outcome, errorName, latency, HSM, mTLS
// subject and client address. Never plaintext, AAD, keys or secrets.
#pragma once

#include <chrono>
#include <string>

#include "xks/wire/request_metadata.h"

namespace xks::proxy {

struct AuditRecord {
  std::chrono::system_clock::time_point time;
  wire::RequestMetadata metadata;
  std::string keystore;
  std::string key_id;
  std::string operation;
  std::string outcome;  // ok | error
  std::string error_name;
  int status = 0;
  long latency_us = 0;
  std::string hsm_id;
  std::string client_subject;
  std::string client_address;
  std::string refusal;     // the transport's reason, for a request it refused (else empty)
  std::string authz_rule;  // the authorization rule (or label) that decided, if one did
};

// The record's fields for AuditLog::submit, in a fixed order.
std::string audit_fields(const AuditRecord& record);

}  // namespace xks::proxy
