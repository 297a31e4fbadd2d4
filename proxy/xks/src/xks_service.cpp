// The XKS request path, from route to response.
#include "xks/proxy/xks/xks_service.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/algorithm/string/predicate.hpp>

#include "deadline_watch.h"
#include "quota.h"
#include "xks/proxy/ops/audit_log.h"
#include "xks/proxy/xks/router.h"
#include "xks/proxy/xks/xks_error.h"
#include "xks/sigv4/authorization.h"
#include "xks_json.h"

namespace xks::proxy {

// What the HSM part of a request produced, kept apart from the request's outcome until the
// answer is claimed (the deadline watch may answer first).
struct XksService::HsmAnswer {
  HttpResponse response;
  std::optional<XksError> error;
  CK_RV hsm_rv = CKR_OK;
  double hsm_seconds = -1;
  bool backend_failed = false;  // what the circuit breaker counts (hsm::is_backend_failure)
  bool key_missing = false;     // the HSM has no key of that id
};

struct XksService::Served {
  std::vector<KeyStore> stores;
  std::vector<std::string> prefixes;  // stores[i].prefix, for route()
};

// The HSM part of a request, with everything it needs parsed and checked.
struct XksService::HsmWork {
  wire::Operation operation;
  std::string key_id;
  XksRequest parsed;
  hsm::KeyUse use;  // the key store's
};

// One request from hand-over to answer. Whoever claims it (the HSM work or the deadline watch)
// owns `outcome` from then on; before the hop, only the handling thread touches it.
struct XksService::Exchange final : DeadlineWatch::Watched {
  Exchange(const XksService& service_, HttpRequest request_, Clock::time_point received_,
           Deadline deadline_, Respond respond_)
      : service(service_),
        request(std::move(request_)),
        received(received_),
        deadline(deadline_),
        respond(std::move(respond_)) {}

  bool claim() { return !answered.exchange(true, std::memory_order_acq_rel); }
  bool done() const override { return answered.load(std::memory_order_acquire); }
  void expire() override {
    if (!claim())
      return;
    // The member holding the work did not answer in time.
    service.fleet_.member(member.load()).backend->circuit().record_failure();
    outcome.error = XksError::kDependencyTimeout;
    service.finish(*this, error_response(XksError::kDependencyTimeout,
                                         "the HSM did not answer before the deadline"));
  }

  const XksService& service;
  std::shared_ptr<const Served> served;  // the key stores it started with (outcome.keystore)
  HttpRequest request;
  Clock::time_point received;
  Deadline deadline;
  Respond respond;
  XksOutcome outcome;
  bool audited = false;
  std::atomic<bool> answered{false};
  std::atomic<std::size_t> member{0};  // the fleet member the HSM work is at
};

namespace {

XksService::Clock::time_point now() {
  return XksService::Clock::now();
}

// The one place where HSM errors become XKS errors.
std::pair<XksError, std::string_view> xks_error_of(const hsm::HsmError& error) {
  using hsm::HsmErrorKind;
  switch (error.kind) {
    case HsmErrorKind::kKeyNotFound:
      return {XksError::kKeyNotFound, "no such key in the HSM"};
    case HsmErrorKind::kDuplicateKey:
      return {XksError::kInvalidState, "several HSM keys share this external key id"};
    case HsmErrorKind::kKeyDisabled:
      return {XksError::kInvalidState, "the key is disabled"};
    case HsmErrorKind::kUnprotectedKey:
      return {XksError::kInvalidState,
              "the key is not protected by the HSM (extractable or not sensitive)"};
    case HsmErrorKind::kKeyUsage:
      return {XksError::kInvalidKeyUsage, error.message};
    case HsmErrorKind::kInvalidCiphertext:
      return {XksError::kInvalidCiphertext,
              "ciphertext, IV, tag, AAD or metadata do not authenticate"};
    case HsmErrorKind::kBusy:
      return {XksError::kDependencyTimeout, "the HSM could not start the call before the deadline"};
    case HsmErrorKind::kSessionLost:
    case HsmErrorKind::kKeyHandleInvalid:
    case HsmErrorKind::kLoginFailed:
    case HsmErrorKind::kUnavailable:
      return {XksError::kInternal, "the HSM is unavailable"};
    case HsmErrorKind::kBadIv:
    case HsmErrorKind::kOther:
      break;
  }
  return {XksError::kInternal, "the HSM operation failed"};
}

HttpResponse error_response(XksOutcome& outcome, XksError error, std::string_view message) {
  outcome.error = error;
  return proxy::error_response(error, message);
}

const Bytes kEmpty;

// `target` is the key store's own: under "<prefix>/" (every path for the empty prefix).
bool is_under_prefix(std::string_view target, std::string_view prefix) {
  return target.size() > prefix.size() && target.starts_with(prefix) &&
         target[prefix.size()] == '/';
}

void count(metrics::Counter* counter) {
  if (counter != nullptr)
    counter->inc();
}

}  // namespace

const KeyStore& XksService::key_store_of(const Served& served, const HttpRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (name.size() != 13 || !boost::iequals(name, "authorization"))
      continue;
    if (auto authorization = sigv4::parse_authorization(value)) {
      for (const KeyStore& store : served.stores) {
        if (store.verifier->knows(authorization->access_key_id))
          return store;
      }
    }
    break;
  }
  return served.stores.front();
}

XksService::XksService(const std::vector<KeyStoreConfig>& key_stores, hsm::Fleet& fleet,
                       ProxyIdentity identity, XksMetrics* metrics, AuditLog* audit)
    : fleet_(fleet),
      identity_(std::move(identity)),
      metrics_(metrics),
      audit_(audit),
      watch_(std::make_unique<DeadlineWatch>()) {
  for (std::size_t i = 0; i < fleet_.size(); ++i) {
    health_keys_.push_back(fleet_.member(i).backend->health_key());
    threaded_members_ = threaded_members_ || !fleet_.member(i).backend->executor().inline_calls();
  }
  served_.store(build(key_stores, nullptr));
  if (metrics_ != nullptr)
    metrics_->set_key_stores(key_stores);
}

std::shared_ptr<const XksService::Served> XksService::build(
    const std::vector<KeyStoreConfig>& key_stores, const Served* previous) const {
  auto served = std::make_shared<Served>();
  auto now = Clock::now();
  for (const KeyStoreConfig& config : key_stores) {
    std::vector<sigv4::Credential> credentials;
    for (const CredentialConfig& credential : config.credentials)
      credentials.push_back(credential.credential);
    std::shared_ptr<Quota> quota;
    const bool has_quota =
        config.quota.requests_per_second > 0 || config.quota.key_requests_per_second > 0;
    if (has_quota && previous != nullptr) {
      // The same quota keeps its buckets: a reload does not hand out a fresh burst.
      for (const KeyStore& old : previous->stores) {
        if (old.prefix == config.prefix && old.quota && old.quota->config() == config.quota)
          quota = old.quota;
      }
    }
    if (has_quota && !quota)
      quota = std::make_shared<Quota>(config.quota, now);
    served->stores.push_back(
        {config.prefix, std::make_shared<sigv4::Verifier>(std::move(credentials), config.regions),
         KeyStorePolicy(config, health_keys_), std::move(quota),
         metrics_ != nullptr ? metrics_->series(config) : XksMetrics::KeyStoreSeries{},
         hsm::KeyUse{config.allow_unprotected_keys,
                     config.aws_sample_metadata
                         ? std::make_shared<const Bytes>(*config.aws_sample_metadata)
                         : nullptr}});
    served->prefixes.push_back(config.prefix);
  }
  return served;
}

void XksService::reconfigure(const std::vector<KeyStoreConfig>& key_stores) {
  std::lock_guard lock(reconfigure_mutex_);
  std::shared_ptr<const Served> previous = served_.load();
  served_.store(build(key_stores, previous.get()));
  if (metrics_ != nullptr)
    metrics_->set_key_stores(key_stores);
  // The kill switch's every change is logged and audited: who, when and why.
  for (const KeyStoreConfig& config : key_stores) {
    bool was_blocked = false;
    for (const KeyStore& old : previous->stores) {
      if (old.prefix == config.prefix)
        was_blocked = old.policy.blocked();
    }
    if (config.block.blocked == was_blocked)
      continue;
    const std::string name = config.prefix.empty() ? "/" : config.prefix;
    if (config.block.blocked) {
      spdlog::warn("key store {} is BLOCKED (by '{}': '{}'): its key operations are refused", name,
                   config.block.by, config.block.reason);
    } else {
      spdlog::warn("key store {} is unblocked", name);
    }
    if (audit_ != nullptr) {
      std::string fields;
      append_json_field(fields, "event",
                        config.block.blocked ? "keystore_blocked" : "keystore_unblocked");
      append_json_field(fields, "keystore", config.prefix);
      append_json_field(fields, "by", config.block.by);
      append_json_field(fields, "reason", config.block.reason);
      if (config.block.at)
        append_json_field(fields, "at", utc_timestamp(*config.block.at));
      audit_->record_event(audit_record_kind::kConfig, fields);
    }
  }
}

XksService::~XksService() = default;

void XksService::stop_deadline_watch() {
  watch_.reset();
}

void XksService::handle(HttpRequest request, Clock::time_point received, Deadline deadline,
                        Respond respond) const {
  auto exchange =
      std::make_shared<Exchange>(*this, std::move(request), received, deadline, std::move(respond));
  exchange->served = served_.load();
  XksOutcome& outcome = exchange->outcome;
  std::optional<HsmWork> work;
  std::optional<HttpResponse> response =
      prepare(*exchange->served, exchange->request, outcome, work);
  // A place in the audit queue once the request is authenticated (so that unauthenticated
  // clients learn nothing of the log's state): with on_full = reject, nothing is served
  // unaudited.
  if (outcome.authenticated && audit_ != nullptr) {
    AuditLog::Place place = audit_->reserve();
    exchange->audited = place == AuditLog::Place::kReserved;
    if (!exchange->audited && audit_->config().on_full == AuditConfig::OnFull::kReject) {
      exchange->claim();
      return finish(
          *exchange,
          place == AuditLog::Place::kFull
              ? error_response(outcome, XksError::kThrottling, "the audit log is backlogged")
              : error_response(outcome, XksError::kInternal, "the audit log cannot be written"));
    }
  }
  // The quota last: only a request about to reach the HSM spends a token.
  if (!response)
    response = admit(*outcome.keystore, work->key_id, outcome);
  if (response) {
    exchange->claim();
    return finish(*exchange, std::move(*response));
  }
  submit(std::move(exchange), std::move(*work));
}

HttpResponse XksService::refuse(HttpRefusal reason, const std::string& client_address) const {
  auto [error, message] = refusal_error(reason);
  HttpResponse response = proxy::error_response(error, message);
  XksOutcome outcome;
  outcome.error = error;
  outcome.status = response.status;
  if (metrics_ != nullptr)
    metrics_->record(outcome, 0);
  if (audit_ != nullptr && audit_->sample_unauthenticated()) {
    AuditRecord record;
    record.time = std::chrono::system_clock::now();
    record.outcome = "error";
    record.error_name = error_name(error);
    record.status = response.status;
    record.client_address = client_address;
    record.refusal = refusal_name(reason);
    audit_->submit(audit_fields(record));
  }
  return response;
}

void XksService::submit(std::shared_ptr<Exchange> exchange, HsmWork work) const {
  auto member = fleet_.choose(work.key_id);
  if (!member) {
    exchange->claim();
    if (metrics_ != nullptr)
      metrics_->record_circuit_rejection();
    return finish(*exchange, error_response(exchange->outcome, XksError::kDependencyTimeout,
                                            "no HSM is available (every circuit is open)"));
  }
  // Admission: work that cannot finish by the deadline (behind the calls queued at the least
  // busy usable member, at its usual call time) is refused now rather than at the deadline:
  // KMS can retry sooner, and the HSM is spared work nobody will wait for.
  if (now() + fleet_.member(*member).expected_completion() > exchange->deadline) {
    exchange->claim();
    exchange->outcome.member = *member;
    if (metrics_ != nullptr)
      metrics_->record_shed(*member);
    return finish(*exchange, error_response(exchange->outcome, XksError::kDependencyTimeout,
                                            "the HSM backlog cannot finish before the deadline"));
  }
  // Watched weakly: once the HSM work is done and gone, the watch forgets the request. (The
  // member first: a deadline already past is charged to the right one.) Work that runs inline
  // wherever it goes needs no watch: it starts only before its deadline, does not wait on a
  // device, and is answered when the call returns.
  exchange->member.store(*member);
  if (threaded_members_ || !runs_inline(*exchange))
    watch_->watch(exchange->deadline, exchange);
  attempt(std::move(exchange), std::make_shared<const HsmWork>(std::move(work)), *member, 0);
}

void XksService::attempt(std::shared_ptr<Exchange> exchange, std::shared_ptr<const HsmWork> work,
                         std::size_t member, hsm::Fleet::Tried tried) const {
  hsm::Fleet::Member& at = fleet_.member(member);
  exchange->member.store(member);
  ++at.in_flight;
  Exchange& raw = *exchange;
  const bool run_inline = runs_inline(raw);
  bool queued = at.backend->executor().submit(
      [this, exchange, work, member, tried, &at] {
        struct Finished {
          hsm::Fleet::Member& at;
          ~Finished() { --at.in_flight; }
        } finished{at};
        if (exchange->done())
          return;  // answered at its deadline by the watch
        if (now() >= exchange->deadline) {
          // Too late to start: the HSM is not called, and the answer is given here (the watch
          // holds the request only weakly and may not have reached it yet).
          exchange->expire();
          return;
        }
        HsmAnswer answer = call_hsm(*work, exchange->deadline, at.backend->keys());
        at.record_call(std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(answer.hsm_seconds)));
        auto late = [&] {
          // The deadline answer went first (and counted against this member's circuit).
          if (metrics_ != nullptr)
            metrics_->record_late_result(work->operation, member, answer.hsm_seconds);
        };
        // Moves the work to another usable member while the deadline allows.
        auto moved_elsewhere = [&] {
          hsm::Fleet::Tried now_tried = tried | (hsm::Fleet::Tried{1} << member);
          auto next = fleet_.choose(work->key_id, now_tried);
          if (!next || now() >= exchange->deadline)
            return false;
          attempt(exchange, work, *next, now_tried);
          return true;
        };
        hsm::CircuitBreaker& circuit = at.backend->circuit();
        if (answer.backend_failed) {
          if (exchange->done())
            return late();
          circuit.record_failure();
          if (moved_elsewhere())
            return;
        } else if (answer.key_missing && !exchange->done() && !fleet_.inventoried(work->key_id)) {
          // A key made since start may be on other members only; this one did answer.
          if (moved_elsewhere())
            return circuit.record_success();
        }
        if (!exchange->claim())
          return late();
        if (!answer.backend_failed)
          circuit.record_success();  // claimed first: a late success never resets the count
        XksOutcome& outcome = exchange->outcome;
        outcome.member = member;
        outcome.error = answer.error;
        outcome.hsm_rv = answer.hsm_rv;
        outcome.hsm_seconds = answer.hsm_seconds;
        finish(*exchange, std::move(answer.response));
      },
      run_inline);
  if (!queued) {
    --at.in_flight;
    if (raw.claim()) {
      finish(raw,
             error_response(raw.outcome, XksError::kDependencyTimeout, "the HSM queue is full"));
    }
  }
}

// An in-process module's call runs on the I/O thread unless the connection has other requests
// to get on with meanwhile (HTTP/2): there, handing it to an HSM thread lets the connection keep
// reading, and answers leave in batches (measured: 19.5k against 13.2k req/s over 4 HTTP/2
// connections of 16 streams).
bool XksService::runs_inline(const Exchange& exchange) {
  return !exchange.request.multiplexed;
}

void XksService::finish(Exchange& exchange, HttpResponse response) const {
  XksOutcome& outcome = exchange.outcome;
  outcome.status = response.status;
  response.authenticated = outcome.authenticated;
  double seconds = std::chrono::duration<double>(now() - exchange.received).count();
  if (metrics_ != nullptr)
    metrics_->record(outcome, seconds);
  if (!outcome.authenticated) {
    // Sampled: a flood of junk signatures cannot fill the disk, and never waits for the log.
    if (audit_ != nullptr && audit_->sample_unauthenticated())
      audit_->submit(audit_fields(audit_record(outcome, exchange.request, seconds)));
    return exchange.respond(std::move(response));
  }
  if (!exchange.audited) {
    // Served without a record (drop); with reject, this is the refusal itself.
    if (audit_ != nullptr && audit_->config().on_full == AuditConfig::OnFull::kDrop)
      audit_->dropped();
    return exchange.respond(std::move(response));
  }
  std::string fields = audit_fields(audit_record(outcome, exchange.request, seconds));
  if (audit_->config().on_full == AuditConfig::OnFull::kReject) {
    // Mandatory auditing: the answer leaves once its record is written.
    return audit_->submit(
        std::move(fields), [respond = std::move(exchange.respond),
                            response = std::move(response)](bool written) mutable {
          if (written)
            return respond(std::move(response));
          HttpResponse refused =
              proxy::error_response(XksError::kInternal, "the audit record could not be written");
          refused.authenticated = true;
          respond(std::move(refused));
        });
  }
  audit_->submit(std::move(fields));
  exchange.respond(std::move(response));
}

AuditRecord XksService::audit_record(XksOutcome& outcome, const HttpRequest& request,
                                     double seconds) const {
  AuditRecord record;
  record.time = std::chrono::system_clock::now();
  record.metadata = std::move(outcome.metadata);
  if (outcome.keystore != nullptr)
    record.keystore = outcome.keystore->prefix;
  record.authz_rule = outcome.authz_rule;
  record.key_id = std::move(outcome.key_id);
  if (outcome.operation)
    record.operation = operation_name(*outcome.operation);
  record.outcome = outcome.error ? "error" : "ok";
  if (outcome.error)
    record.error_name = error_name(*outcome.error);
  record.status = outcome.status;
  record.latency_us = static_cast<long>(seconds * 1e6);
  if (outcome.member)
    record.hsm_id = fleet_.member(*outcome.member).name;
  record.client_subject = request.client_subject;
  record.client_address = request.client_address;
  return record;
}

std::optional<HttpResponse> XksService::authorize(const KeyStore& store, wire::Operation operation,
                                                  std::string_view key_id,
                                                  XksOutcome& outcome) const {
  using Verdict = AuthorizationDecision::Verdict;
  AuthorizationDecision decision = store.policy.decide({operation, key_id, outcome.metadata});
  outcome.authz_rule = KeyStorePolicy::label(decision);
  switch (decision.verdict) {
    case Verdict::kKeyNotServed:
      return error_response(outcome, XksError::kKeyNotFound, "no such key in this key store");
    case Verdict::kBlocked:
      count(store.series.denied_blocked);
      return error_response(outcome, XksError::kAccessDenied,
                            "this key store is blocked by its owner");
    case Verdict::kDenied: {
      metrics::Counter* counter = store.series.denied_without_rule;
      if (decision.rule != nullptr && !store.series.denied_by_rule.empty()) {
        counter = store.series.denied_by_rule[static_cast<std::size_t>(
            decision.rule - store.policy.rules().data())];
      }
      count(counter);
      return error_response(outcome, XksError::kAccessDenied,
                            "refused by the key store's authorization rules");
    }
    case Verdict::kAllowed:
      break;
  }
  return std::nullopt;
}

std::optional<HttpResponse> XksService::admit(const KeyStore& store, std::string_view key_id,
                                              XksOutcome& outcome) const {
  if (store.quota) {
    switch (store.quota->admit(key_id, Clock::now())) {
      case Quota::Result::kKeyStoreThrottled:
        count(store.series.throttled_keystore);
        return error_response(outcome, XksError::kThrottling,
                              "the key store's request quota is used up");
      case Quota::Result::kKeyThrottled:
        count(store.series.throttled_key);
        return error_response(outcome, XksError::kThrottling, "the key's request quota is used up");
      case Quota::Result::kAdmitted:
        break;
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> XksService::prepare(const Served& served, const HttpRequest& request,
                                                XksOutcome& outcome,
                                                std::optional<HsmWork>& work) const {
  std::vector<sigv4::Header> headers;
  headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers)
    headers.push_back({name, value});
  sigv4::Request signed_request{request.method, request.target, "", headers, request.body};
  auto found = route(request.target, served.prefixes);
  if (!found) {
    // A path that names no key store is 404 only to a caller holding the credential of a key
    // store whose prefix the path is under; to anyone else it looks like any other path (401),
    // so prefixes cannot be enumerated. One verification, with the key store that knows the
    // access key id (or the first, whose decoy then costs the same), whatever the path.
    const KeyStore& store = key_store_of(served, request);
    auto verified = store.verifier->verify(signed_request);
    if (verified && is_under_prefix(request.target, store.prefix)) {
      outcome.authenticated = true;
      return error_response(outcome, XksError::kInvalidUriPath, "not an XKS API path");
    }
    outcome.auth_failure = verified ? sigv4::Failure::kUnknownAccessKeyId : verified.error();
    return error_response(outcome, XksError::kAuthenticationFailed,
                          "the request signature is not valid");
  }
  const KeyStore& store = served.stores[found->keystore];
  outcome.keystore = &store;
  outcome.operation = found->operation;

  auto verified = store.verifier->verify(signed_request);
  if (!verified) {
    outcome.auth_failure = verified.error();
    return error_response(outcome, XksError::kAuthenticationFailed,
                          "the request signature is not valid");
  }
  outcome.authenticated = true;
  if (request.method != "POST") {
    return error_response(outcome, XksError::kMethodNotAllowed, "XKS APIs accept only POST");
  }
  auto parsed = parse_request(found->operation, request.body);
  if (!parsed)
    return error_response(outcome, parsed.error().error, parsed.error().message);
  outcome.metadata = parsed->metadata;

  if (found->operation == wire::Operation::kGetHealthStatus) {
    // The background check keeps this fresh (spec: up to 60 s old): no HSM call here.
    std::vector<FleetMember> members;
    for (std::size_t i = 0; i < fleet_.size(); ++i) {
      hsm::Backend& backend = *fleet_.member(i).backend;
      hsm::HealthState state = backend.circuit().state() == hsm::CircuitState::kClosed
                                   ? backend.health().last().state
                                   : hsm::HealthState::kUnavailable;
      members.push_back({fleet_.member(i).name, backend.health().model(),
                         std::string(hsm::health_state_name(state))});
    }
    return HttpResponse{200,
                        health_response(identity_.fleet_size, identity_.vendor, identity_.model,
                                        fleet_.member(0).backend->token().manufacturer, members)};
  }

  std::string key_id(found->key_id);
  outcome.key_id = key_id;
  if (auto refused = authorize(store, found->operation, key_id, outcome))
    return refused;
  work.emplace(HsmWork{found->operation, std::move(key_id), std::move(*parsed), store.key_use});
  return std::nullopt;
}

XksService::HsmAnswer XksService::call_hsm(const HsmWork& work, Deadline deadline,
                                           hsm::KeyService& keys) const {
  auto started = now();
  HsmAnswer answer;
  auto fail = [&answer](XksError error, std::string_view message) {
    answer.error = error;
    answer.response = proxy::error_response(error, message);
  };
  auto hsm_fail = [&answer, &fail](const hsm::HsmError& error) {
    answer.hsm_rv = error.rv;
    answer.backend_failed = hsm::is_backend_failure(error.kind);
    answer.key_missing = error.kind == hsm::HsmErrorKind::kKeyNotFound;
    auto [xks_error, message] = xks_error_of(error);
    fail(xks_error, message);
  };
  switch (work.operation) {
    case wire::Operation::kGetKeyMetadata: {
      auto key = keys.metadata(work.key_id, work.use, deadline);
      if (!key) {
        hsm_fail(key.error());
      } else if (!key->active.is_aes_256()) {
        fail(XksError::kInvalidState, "not an AES-256 key");
      } else {
        answer.response = {200, metadata_response(key->active.key_usage(), !key->disabled)};
      }
      break;
    }
    case wire::Operation::kEncrypt: {
      const EncryptRequest& encrypt = *work.parsed.encrypt;
      const Bytes& aad = encrypt.aad ? *encrypt.aad : kEmpty;
      auto sealed = keys.encrypt(work.key_id, encrypt.plaintext, aad, work.use, deadline);
      if (!sealed) {
        hsm_fail(sealed.error());
        break;
      }
      const hsm::GcmCiphertext& gcm = sealed->gcm;
      std::string integrity;
      if (encrypt.cdiv) {
        // Spec appendix C: the CDIV is computed before the verification decrypt, so that any
        // corruption after it cannot go unnoticed; a failed decrypt is the answer.
        integrity = cdiv(aad, sealed->ciphertext_metadata, gcm.iv, gcm.ciphertext, gcm.tag);
        auto opened = keys.decrypt(work.key_id, gcm.ciphertext, gcm.iv, gcm.tag, aad,
                                   sealed->ciphertext_metadata, work.use, deadline);
        if (!opened) {
          hsm_fail(opened.error());
          break;
        }
        if (*opened != encrypt.plaintext) {
          fail(XksError::kInternal, "verification decrypt did not round-trip");
          break;
        }
      }
      answer.response = {200, encrypt_response(gcm.ciphertext, gcm.iv, gcm.tag,
                                               sealed->ciphertext_metadata, integrity)};
      break;
    }
    case wire::Operation::kDecrypt: {
      const DecryptRequest& decrypt = *work.parsed.decrypt;
      auto opened = keys.decrypt(
          work.key_id, decrypt.ciphertext, decrypt.iv, decrypt.tag,
          decrypt.aad ? *decrypt.aad : kEmpty,
          decrypt.ciphertext_metadata ? *decrypt.ciphertext_metadata : kEmpty, work.use, deadline);
      if (!opened) {
        hsm_fail(opened.error());
        break;
      }
      answer.response = {200, decrypt_response(*opened)};
      break;
    }
    case wire::Operation::kGetHealthStatus:
      fail(XksError::kInternal, "unhandled operation");
      break;
  }
  answer.hsm_seconds = std::chrono::duration<double>(now() - started).count();
  return answer;
}

}  // namespace xks::proxy
