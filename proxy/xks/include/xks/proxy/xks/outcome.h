// What happened to one XKS request: what the metrics count and the audit log records.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "xks/hsm/pkcs11.h"
#include "xks/proxy/xks/xks_error.h"
#include "xks/sigv4/failure.h"
#include "xks/wire/operation.h"
#include "xks/wire/request_metadata.h"

namespace xks::proxy {

struct KeyStore;

struct XksOutcome {
  const KeyStore* keystore = nullptr;        // set once routed
  std::optional<wire::Operation> operation;  // set once routed
  std::optional<XksError> error;             // unset: success
  std::optional<sigv4::Failure> auth_failure;
  bool authenticated = false;         // the SigV4 signature verified
  std::optional<std::size_t> member;  // the fleet member that gave the HSM's answer
  CK_RV hsm_rv = CKR_OK;              // the PKCS#11 code behind an HSM error
  double hsm_seconds = -1;            // time spent at the HSM layer; < 0: none
  int status = 0;                     // HTTP status of the answer
  std::string key_id;                 // external key id, once routed
  wire::RequestMetadata metadata;     // once the body parsed
  std::string_view authz_rule;        // the rule (or label) that decided, if one did
};

}  // namespace xks::proxy
