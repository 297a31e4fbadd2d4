// The XKS request path, from route to response.
#include "xks/proxy/xks/xks_service.h"

#include "router.h"
#include "xks/proxy/ops/audit_log.h"
#include "xks/proxy/xks/xks_error.h"
#include "xks_json.h"

namespace xks::proxy {

namespace {

HttpResponse error_response(XksOutcome& outcome, XksError error, std::string_view message) {
  outcome.error = error;
  return proxy::error_response(error, message);
}

// The one place where HSM errors become XKS errors.
HttpResponse hsm_error_response(XksOutcome& outcome, const hsm::HsmError& error) {
  outcome.hsm_rv = error.rv;
  using hsm::HsmErrorKind;
  switch (error.kind) {
    case HsmErrorKind::kKeyNotFound:
      return error_response(outcome, XksError::kKeyNotFound, "no such key in the HSM");
    case HsmErrorKind::kDuplicateKey:
      return error_response(outcome, XksError::kInvalidState,
                            "several HSM keys share this external key id");
    case HsmErrorKind::kKeyUsage:
      return error_response(outcome, XksError::kInvalidKeyUsage, error.message);
    case HsmErrorKind::kInvalidCiphertext:
      return error_response(outcome, XksError::kInvalidCiphertext,
                            "ciphertext, IV, tag, AAD or metadata do not authenticate");
    case HsmErrorKind::kBusy:
      return error_response(outcome, XksError::kDependencyTimeout,
                            "no HSM session became free before the deadline");
    case HsmErrorKind::kSessionLost:
    case HsmErrorKind::kKeyHandleInvalid:
    case HsmErrorKind::kLoginFailed:
    case HsmErrorKind::kUnavailable:
      return error_response(outcome, XksError::kInternal, "the HSM is unavailable");
    case HsmErrorKind::kBadIv:
    case HsmErrorKind::kOther:
      break;
  }
  return error_response(outcome, XksError::kInternal, "the HSM operation failed");
}

const Bytes kEmpty;

// Measures the HSM part of a request, however it returns.
class HsmTimer {
 public:
  explicit HsmTimer(XksOutcome& outcome) : outcome_(outcome), started_(XksService::Clock::now()) {}
  ~HsmTimer() {
    outcome_.hsm_seconds =
        std::chrono::duration<double>(XksService::Clock::now() - started_).count();
  }
  HsmTimer(const HsmTimer&) = delete;
  HsmTimer& operator=(const HsmTimer&) = delete;

 private:
  XksOutcome& outcome_;
  XksService::Clock::time_point started_;
};

}  // namespace

XksService::XksService(std::vector<KeyStore> key_stores, hsm::KeyService& keys,
                       hsm::HsmHealth& health, ProxyIdentity identity, OutcomeObserver observe,
                       AuditLog* audit)
    : key_stores_(std::move(key_stores)),
      keys_(keys),
      health_(health),
      identity_(std::move(identity)),
      observe_(std::move(observe)),
      audit_(audit) {
  for (const KeyStore& store : key_stores_)
    prefixes_.push_back(store.prefix);
}

HttpResponse XksService::handle(const HttpRequest& request, Clock::time_point received,
                                Deadline deadline) const {
  XksOutcome outcome;
  // A place in the audit queue first: with on_full = reject, nothing is served unaudited.
  bool audited = audit_ != nullptr && audit_->reserve();
  HttpResponse response;
  if (audit_ != nullptr && !audited && audit_->config().on_full == AuditConfig::OnFull::kReject) {
    response = error_response(outcome, XksError::kThrottling, "the audit log is backlogged");
  } else {
    response = answer(request, deadline, outcome);
  }
  outcome.status = response.status;
  double seconds = std::chrono::duration<double>(Clock::now() - received).count();
  if (observe_)
    observe_(outcome, seconds);
  if (audited) {
    audit_->submit(audit_fields(audit_record(outcome, request, seconds)));
  } else if (audit_ != nullptr) {
    audit_->dropped();
  }
  return response;
}

AuditRecord XksService::audit_record(XksOutcome& outcome, const HttpRequest& request,
                                     double seconds) const {
  AuditRecord record;
  record.time = std::chrono::system_clock::now();
  record.metadata = std::move(outcome.metadata);
  if (outcome.keystore)
    record.keystore = key_stores_[*outcome.keystore].prefix;
  record.key_id = std::move(outcome.key_id);
  if (outcome.operation)
    record.operation = operation_name(*outcome.operation);
  record.outcome = outcome.error ? "error" : "ok";
  if (outcome.error)
    record.error_name = error_name(*outcome.error);
  record.status = outcome.status;
  record.latency_us = static_cast<long>(seconds * 1e6);
  record.hsm_id = health_.token().serial;
  record.client_subject = request.client_subject;
  return record;
}

HttpResponse XksService::answer(const HttpRequest& request, Deadline deadline,
                                XksOutcome& outcome) const {
  auto found = route(request.target, prefixes_);
  if (!found)
    return error_response(outcome, XksError::kInvalidUriPath, "not an XKS API path");
  const KeyStore& store = key_stores_[found->keystore];
  outcome.keystore = found->keystore;
  outcome.operation = found->operation;

  std::vector<sigv4::Header> headers;
  headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers)
    headers.push_back({name, value});
  auto verified =
      store.verifier->verify({request.method, request.target, "", headers, request.body});
  if (!verified) {
    outcome.auth_failure = verified.error();
    return error_response(outcome, XksError::kAuthenticationFailed,
                          "the request signature is not valid");
  }
  if (request.method != "POST") {
    return error_response(outcome, XksError::kMethodNotAllowed, "XKS APIs accept only POST");
  }
  auto parsed = parse_request(found->operation, request.body);
  if (!parsed)
    return error_response(outcome, parsed.error().error, parsed.error().message);
  outcome.metadata = parsed->metadata;

  if (found->operation == wire::Operation::kGetHealthStatus) {
    hsm::HealthReport report = health_.current(deadline);
    FleetMember member{health_.token().serial, health_.model(),
                       std::string(hsm::health_state_name(report.state))};
    return {200, health_response(identity_.fleet_size, identity_.vendor, identity_.model,
                                 health_.token().manufacturer, {&member, 1})};
  }

  std::string key_id(found->key_id);
  outcome.key_id = key_id;
  if (store.allowed_key_ids && !store.allowed_key_ids->contains(key_id)) {
    return error_response(outcome, XksError::kKeyNotFound, "no such key in this key store");
  }
  HsmTimer hsm_timer(outcome);
  switch (found->operation) {
    case wire::Operation::kGetKeyMetadata: {
      auto key = keys_.metadata(key_id, deadline);
      if (!key)
        return hsm_error_response(outcome, key.error());
      if (!key->is_aes_256())
        return error_response(outcome, XksError::kInvalidState, "not an AES-256 key");
      auto usage = key->key_usage();
      return {200, metadata_response(usage)};
    }
    case wire::Operation::kEncrypt: {
      const EncryptRequest& encrypt = *parsed->encrypt;
      const Bytes& aad = encrypt.aad ? *encrypt.aad : kEmpty;
      auto hsm_aad = hsm::xks_aad(aad, {});
      if (!hsm_aad)
        return error_response(outcome, XksError::kValidation, hsm_aad.error().message);
      auto sealed = keys_.encrypt(key_id, encrypt.plaintext, *hsm_aad, deadline);
      if (!sealed)
        return hsm_error_response(outcome, sealed.error());
      std::string integrity;
      if (encrypt.cdiv) {
        // Spec appendix C: the CDIV is computed before the verification decrypt, so that any
        // corruption after it cannot go unnoticed; a failed decrypt is the answer.
        integrity = cdiv(aad, {}, sealed->iv, sealed->ciphertext, sealed->tag);
        auto opened =
            keys_.decrypt(key_id, sealed->ciphertext, sealed->iv, sealed->tag, *hsm_aad, deadline);
        if (!opened)
          return hsm_error_response(outcome, opened.error());
        if (*opened != encrypt.plaintext) {
          return error_response(outcome, XksError::kInternal,
                                "verification decrypt did not round-trip");
        }
      }
      return {200, encrypt_response(sealed->ciphertext, sealed->iv, sealed->tag, integrity)};
    }
    case wire::Operation::kDecrypt: {
      const DecryptRequest& decrypt = *parsed->decrypt;
      auto hsm_aad =
          hsm::xks_aad(decrypt.aad ? *decrypt.aad : kEmpty,
                       decrypt.ciphertext_metadata ? *decrypt.ciphertext_metadata : kEmpty);
      if (!hsm_aad)
        return error_response(outcome, XksError::kValidation, hsm_aad.error().message);
      auto opened =
          keys_.decrypt(key_id, decrypt.ciphertext, decrypt.iv, decrypt.tag, *hsm_aad, deadline);
      if (!opened)
        return hsm_error_response(outcome, opened.error());
      return {200, decrypt_response(*opened)};
    }
    case wire::Operation::kGetHealthStatus:
      break;
  }
  return error_response(outcome, XksError::kInternal, "unhandled operation");
}

}  // namespace xks::proxy
