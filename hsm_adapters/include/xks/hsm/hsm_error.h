// Errors of the HSM layer as values: a small category the proxy maps to an XKS error, the
// PKCS#11 return value behind it, and a message for logs (never key material or PINs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "xks/hsm/pkcs11.h"

namespace xks::hsm {

enum class HsmErrorKind : std::uint8_t {
  kKeyNotFound,        // no key with that label
  kDuplicateKey,       // two or more keys share the label: refused, never a silent pick
  kKeyUsage,           // the key does not allow the operation
  kInvalidCiphertext,  // authentication failed: tampered ciphertext, tag, IV, AAD or metadata
  kKeyDisabled,        // the key is disabled (`xks-proxy keys disable`)
  kUnprotectedKey,     // the key is extractable or not sensitive, and that is not allowed
  kSessionLost,        // the session is unusable; it is replaced
  kKeyHandleInvalid,   // the cached object handle went stale; looked up again
  kLoginFailed,        // wrong, locked or expired PIN
  kUnavailable,        // module, slot or token gone or failing
  kBusy,               // the request's deadline came before a session or the call itself
  kBadIv,              // the HSM produced an IV of the wrong length or all zeros
  kOther,
};

// "CKR_PIN_INCORRECT", or "CKR_0x…" for codes PKCS#11 does not name (vendor codes).
std::string ckr_name(CK_RV rv);

// The category of a PKCS#11 failure.
HsmErrorKind classify(CK_RV rv);

// Whether an error means the backend did not answer (device, session, login, a broken IV, or
// the deadline came first), as a circuit breaker counts failures. A bad tag, a missing key or a
// refused key usage is an answer.
bool is_backend_failure(HsmErrorKind kind);

struct HsmError {
  HsmErrorKind kind = HsmErrorKind::kOther;
  CK_RV rv = CKR_OK;    // CKR_OK when the error did not come from a PKCS#11 call
  std::string message;  // "<function>: <CKR name>" or a plain reason

  // The error a failed PKCS#11 call stands for.
  static HsmError from_rv(std::string_view function, CK_RV rv);
};

template <typename T>
using HsmResult = tl::expected<T, HsmError>;

}  // namespace xks::hsm
