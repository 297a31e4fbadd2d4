// `xks-load probe`: checks a deployed proxy the way AWS KMS does before it connects a key store,
// so that a failure is named before KMS reports only a ConnectionErrorCode. In order: DNS and
// TCP reachability; TLS as KMS negotiates it (TLS 1.2 or 1.3, the cipher suites KMS offers, the
// system's trust store, the host name in the certificate); the URI path, SigV4 signed as KMS
// signs (host;x-amz-date) and the shape of GetHealthStatus; then, for each key, GetKeyMetadata
// (AES_256, ENCRYPT and DECRYPT, ENABLED) and an Encrypt/Decrypt round trip with AAD. Every
// call must be answered within KMS's 250 ms.
//
// A failed check says what KMS would report — a ConnectionErrorCode (XKS_PROXY_NOT_REACHABLE,
// XKS_PROXY_TIMED_OUT, XKS_PROXY_INVALID_TLS_CONFIGURATION, INVALID_CREDENTIALS,
// XKS_PROXY_ACCESS_DENIED, XKS_PROXY_INVALID_CONFIGURATION, XKS_PROXY_INVALID_RESPONSE) or, for
// a key, the exception of CreateKey or of the cryptographic operation — with the cause found and
// the fix. Checks after a failed connection step are not run.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "client.h"

namespace xks::load {

// What KMS gives one call to the proxy, network included.
inline constexpr std::chrono::milliseconds kKmsCallBudget{250};

enum class CheckResult { kOk, kWarning, kFailed };

struct ProbeCheck {
  std::string name;  // "DNS", "TCP", "TLS", "GetHealthStatus", "key foo: GetKeyMetadata", ...
  CheckResult result = CheckResult::kOk;
  double milliseconds = 0;  // the check's own time (a request: until its answer was read)
  std::string detail;       // what was found
  std::string kms_error;    // failed: the ConnectionErrorCode or exception KMS would report
  std::string cause;        // failed or warning: why
  std::string fix;          // failed or warning: what to change
};

struct ProbeReport {
  std::string target;  // https://host[:port]/prefix/kms/xks/v1
  std::vector<ProbeCheck> checks;

  bool passed() const;  // no check failed (warnings allowed)
};

// Runs the checks against options.target with the credential in it; options.ca_file, when
// set, is tried after the system's trust store (a pass through it is a warning: KMS trusts
// public CAs only). options.timeout_seconds bounds the TCP connect, the TLS handshake and each
// request (name resolution is the system resolver's, with its own timeouts). Text from the
// server is cut to 400 characters in the report, and its control characters replaced.
// A request answered later than `budget` fails as XKS_PROXY_TIMED_OUT.
ProbeReport probe(const ClientOptions& options, const std::vector<std::string>& key_ids,
                  std::chrono::milliseconds budget = kKmsCallBudget);

// One line per check, with KMS's error, the cause and the fix under a failed one.
std::string probe_text(const ProbeReport& report);
// {"target", "passed", "checks": [{"name", "result": "ok"|"warning"|"failed", "milliseconds",
// "detail", "kms_error", "cause", "fix"}]}
std::string probe_json(const ProbeReport& report);

}  // namespace xks::load
