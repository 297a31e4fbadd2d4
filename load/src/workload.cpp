// Request building, signing and answer judging for xks-load.
#include "workload.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <charconv>

#include "xks/sigv4/canonical.h"
#include "xks/wire/base64.h"

namespace xks::load {

namespace {

// The strict codec the proxy uses (xks/wire), over strings: answers that are not canonical
// base64 fail verification.
std::string base64_encode(std::string_view data) {
  return wire::base64_encode({reinterpret_cast<const std::uint8_t*>(data.data()), data.size()});
}

std::optional<std::string> base64_decode(std::string_view text) {
  auto bytes = wire::base64_decode(text);
  if (!bytes)
    return std::nullopt;
  return std::string(bytes->begin(), bytes->end());
}

// A string member of a JSON object, or nothing.
std::optional<std::string_view> member(const boost::json::object& object, std::string_view name) {
  auto it = object.find(name);
  if (it == object.end() || !it->value().is_string())
    return std::nullopt;
  return std::string_view(it->value().get_string());
}

// Decoded length of a base64 member, or nothing when absent or malformed.
std::optional<std::string> decoded_member(const boost::json::object& object,
                                          std::string_view name) {
  auto text = member(object, name);
  return text ? base64_decode(*text) : std::nullopt;
}

Outcome verify_failure(std::string what) {
  return {OutcomeKind::kVerify, "verify: " + std::move(what)};
}

}  // namespace

std::string Target::authority() const {
  return port == "443" ? host : host + ":" + port;
}

RequestFactory::RequestFactory(const Target& target, const WorkloadMix& mix,
                               std::shared_ptr<const std::vector<SealedRecord>> sealed,
                               std::uint64_t seed)
    : target_(target),
      mix_(mix),
      sealed_(std::move(sealed)),
      authority_(target.authority()),
      signer_({target.access_key_id, target.secret_access_key}, target.region, "kms-xks-proxy"),
      random_(seed) {
  std::array<double, 4> weights{};
  for (std::size_t i = 0; i < weights.size(); ++i)
    weights[i] = mix.weights[i];
  if (!sealed_ || sealed_->empty())
    weights[1] = 0;
  operations_ = std::discrete_distribution<int>(weights.begin(), weights.end());
}

Operation RequestFactory::pick() {
  return kMixOrder[static_cast<std::size_t>(operations_(random_))];
}

void RequestFactory::append_random_base64(std::string& out, std::size_t bytes) {
  random_bytes_.resize(bytes);
  for (std::size_t i = 0; i < bytes; i += 8) {
    std::uint64_t word = random_();
    for (std::size_t j = i; j < std::min(bytes, i + 8); ++j, word >>= 8)
      random_bytes_[j] = static_cast<std::uint8_t>(word & 0xff);
  }
  out.append(wire::base64_encode(random_bytes_));
}

// A UUID-shaped id, as KMS sends.
void RequestFactory::append_request_id(std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t high = random_(), low = random_();
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20)
      out.push_back('-');
    std::uint64_t& word = i < 16 ? high : low;
    out.push_back(kHex[word & 0xf]);
    word >>= 4;
  }
}

void RequestFactory::append_metadata(std::string& out, std::string_view kms_operation) {
  out.append(R"({"awsPrincipalArn":"arn:aws:iam::123456789012:user/xks-load",)")
      .append(R"("kmsKeyArn":"arn:aws:kms:)")
      .append(target_.region)
      .append(R"(:123456789012:key/xks-load","kmsOperation":")")
      .append(kms_operation)
      .append(R"(","kmsRequestId":")");
  append_request_id(out);
  out.append("\"}");
}

// Every string of `request` is rebuilt in place, so a request reused from call to call keeps
// its buffers: a load run builds tens of thousands per second.
void RequestFactory::make(Operation operation, PreparedRequest& request, std::string_view key_id) {
  request.operation = operation;
  request.plaintext.clear();
  request.aad.clear();
  const SealedRecord* sealed = nullptr;
  if (operation == Operation::kGetHealthStatus) {
    request.key_id.clear();
  } else if (operation == Operation::kDecrypt) {
    sealed = &(*sealed_)[random_() % sealed_->size()];
    request.key_id.assign(sealed->key_id);
    request.plaintext.assign(sealed->plaintext);
    request.aad.assign(sealed->aad);
  } else {
    request.key_id.assign(key_id.empty() ? mix_.key_ids[random_() % mix_.key_ids.size()] : key_id);
    if (operation == Operation::kEncrypt) {
      append_random_base64(request.plaintext, mix_.plaintext_bytes);
      if (mix_.aad_bytes > 0)
        append_random_base64(request.aad, mix_.aad_bytes);
    }
  }
  request.path.assign(target_.uri_prefix).append("/kms/xks/v1/");
  if (operation != Operation::kGetHealthStatus)
    request.path.append("keys/").append(request.key_id).append("/");
  request.path.append(wire::uri_name(operation));

  std::string& body = request.body;
  body.clear();
  switch (operation) {
    case Operation::kGetHealthStatus:
      body.append(R"({"requestMetadata":{"kmsRequestId":")");
      append_request_id(body);
      body.append(R"(","kmsOperation":"KmsHealthCheck"}})");
      break;
    case Operation::kGetKeyMetadata:
      body.append(R"({"requestMetadata":)");
      append_metadata(body, "DescribeKey");
      body.append("}");
      break;
    case Operation::kDecrypt:
      body.append(R"({"requestMetadata":)");
      append_metadata(body, "Decrypt");
      body.append(R"(,"ciphertext":")")
          .append(sealed->ciphertext)
          .append(R"(","initializationVector":")")
          .append(sealed->initialization_vector)
          .append(R"(","authenticationTag":")")
          .append(sealed->authentication_tag)
          .append(R"(","encryptionAlgorithm":"AES_GCM")");
      if (!sealed->ciphertext_metadata.empty())
        body.append(R"(,"ciphertextMetadata":")").append(sealed->ciphertext_metadata).append("\"");
      if (!sealed->aad.empty())
        body.append(R"(,"additionalAuthenticatedData":")").append(sealed->aad).append("\"");
      body.append("}");
      break;
    case Operation::kEncrypt:
      body.append(R"({"requestMetadata":)");
      append_metadata(body, "Encrypt");
      body.append(R"(,"plaintext":")")
          .append(request.plaintext)
          .append(R"(","encryptionAlgorithm":"AES_GCM")");
      if (!request.aad.empty())
        body.append(R"(,"additionalAuthenticatedData":")").append(request.aad).append("\"");
      if (mix_.cdiv)
        body.append(R"(,"ciphertextDataIntegrityValueAlgorithm":"SHA_256")");
      body.append("}");
      break;
  }
  request.amz_date = xks::sigv4::format_amz_date(std::chrono::system_clock::now());
  const xks::sigv4::Header headers[] = {{"host", authority_}, {"x-amz-date", request.amz_date}};
  request.authorization =
      signer_.authorization({"POST", request.path, "", headers, request.body}, request.amz_date);
}

void RequestFactory::http1(const PreparedRequest& request, std::string& out) const {
  char length[24];
  auto [length_end, ignored] = std::to_chars(length, length + sizeof length, request.body.size());
  out.clear();
  out.append("POST ")
      .append(request.path)
      .append(" HTTP/1.1\r\nHost: ")
      .append(authority_)
      .append("\r\nX-Amz-Date: ")
      .append(request.amz_date)
      .append("\r\nAuthorization: ")
      .append(request.authorization)
      .append("\r\nContent-Type: application/json\r\nContent-Length: ")
      .append(length, length_end)
      .append("\r\n\r\n")
      .append(request.body);
}

Outcome judge(const PreparedRequest& request, unsigned status, std::string_view body, bool verify) {
  boost::system::error_code error;
  boost::json::value document;
  if (status != 200 || verify)
    document = boost::json::parse(body, error);
  const boost::json::object* object = error ? nullptr : document.if_object();
  if (status != 200) {
    std::string label = std::to_string(status);
    if (object) {
      if (auto name = member(*object, "errorName"))
        label += " " + std::string(*name);
    }
    return {OutcomeKind::kHttpError, label};
  }
  if (!verify)
    return {OutcomeKind::kOk, "OK"};
  if (!object)
    return verify_failure("answer is not a JSON object");
  switch (request.operation) {
    case Operation::kEncrypt: {
      auto plaintext = base64_decode(request.plaintext);
      auto ciphertext = decoded_member(*object, "ciphertext");
      auto iv = decoded_member(*object, "initializationVector");
      auto tag = decoded_member(*object, "authenticationTag");
      if (!ciphertext || !iv || !tag)
        return verify_failure("encrypt answer lacks ciphertext, IV or tag");
      if (ciphertext->size() != plaintext->size())
        return verify_failure("ciphertext length differs from the plaintext's");
      if ((iv->size() != 12 && iv->size() != 16) || tag->size() != 16)
        return verify_failure("IV or tag of the wrong size");
      if (iv->find_first_not_of('\0') == std::string::npos)
        return verify_failure("all-zero IV");
      auto cdiv = member(*object, "ciphertextDataIntegrityValue");
      if (request.body.find("ciphertextDataIntegrityValueAlgorithm") != std::string::npos) {
        // Spec: base64(SHA-256(AAD || ciphertextMetadata || IV || ciphertext || tag)).
        // Recomputed here on purpose rather than shared with the proxy's code: xks-load is an
        // independent check of the proxy's answers.
        std::string digested = request.aad.empty() ? "" : *base64_decode(request.aad);
        digested += decoded_member(*object, "ciphertextMetadata").value_or("");
        digested += *iv + *ciphertext + *tag;
        unsigned char digest[SHA256_DIGEST_LENGTH];
        SHA256(reinterpret_cast<const unsigned char*>(digested.data()), digested.size(), digest);
        if (!cdiv || *cdiv != base64_encode({reinterpret_cast<char*>(digest), sizeof digest}))
          return verify_failure("wrong ciphertextDataIntegrityValue");
      }
      return {OutcomeKind::kOk, "OK"};
    }
    case Operation::kDecrypt: {
      auto plaintext = member(*object, "plaintext");
      if (!plaintext || *plaintext != request.plaintext)
        return verify_failure("decrypt returned another plaintext");
      return {OutcomeKind::kOk, "OK"};
    }
    case Operation::kGetKeyMetadata:
      if (!member(*object, "keySpec") || !object->contains("keyUsage"))
        return verify_failure("metadata answer lacks keySpec or keyUsage");
      return {OutcomeKind::kOk, "OK"};
    case Operation::kGetHealthStatus:
      if (!object->contains("ekmFleetDetails"))
        return verify_failure("health answer lacks ekmFleetDetails");
      return {OutcomeKind::kOk, "OK"};
  }
  return {OutcomeKind::kOk, "OK"};
}

std::optional<SealedRecord> seal_from_answer(const PreparedRequest& request,
                                             std::string_view body) {
  boost::system::error_code error;
  boost::json::value document = boost::json::parse(body, error);
  const boost::json::object* object = error ? nullptr : document.if_object();
  if (!object)
    return std::nullopt;
  auto ciphertext = member(*object, "ciphertext");
  auto iv = member(*object, "initializationVector");
  auto tag = member(*object, "authenticationTag");
  if (!ciphertext || !iv || !tag)
    return std::nullopt;
  return SealedRecord{request.key_id,
                      request.plaintext,
                      request.aad,
                      std::string(*ciphertext),
                      std::string(*iv),
                      std::string(*tag),
                      std::string(member(*object, "ciphertextMetadata").value_or(""))};
}

}  // namespace xks::load
