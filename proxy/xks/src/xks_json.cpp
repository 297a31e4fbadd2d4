// XKS JSON bodies.
#include "xks_json.h"

#include <openssl/evp.h>

#include <boost/json.hpp>

#include "xks/wire/base64.h"

namespace xks::proxy {

namespace json = boost::json;

namespace {

tl::unexpected<Rejection> reject(XksError error, std::string message) {
  return tl::unexpected(Rejection{error, std::move(message)});
}

// A string member: absent is nullopt, any other type is a rejection.
tl::expected<std::optional<std::string_view>, Rejection> string_member(const json::object& object,
                                                                       std::string_view name) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr)
    return std::nullopt;
  if (!value->is_string())
    return reject(XksError::kValidation, std::string(name) + " must be a string");
  return std::string_view(value->get_string());
}

tl::expected<std::string, Rejection> required_string(const json::object& object,
                                                     std::string_view name) {
  auto member = string_member(object, name);
  if (!member)
    return tl::unexpected(member.error());
  if (!*member)
    return reject(XksError::kValidation, std::string(name) + " is required");
  return std::string(**member);
}

tl::expected<std::optional<Bytes>, Rejection> base64_member(const json::object& object,
                                                            std::string_view name) {
  auto member = string_member(object, name);
  if (!member)
    return tl::unexpected(member.error());
  if (!*member)
    return std::nullopt;
  auto decoded = wire::base64_decode(**member);
  if (!decoded)
    return reject(XksError::kValidation, std::string(name) + " is not valid base64");
  return std::optional<Bytes>(std::move(*decoded));
}

tl::expected<Bytes, Rejection> required_base64(const json::object& object, std::string_view name) {
  auto member = base64_member(object, name);
  if (!member)
    return tl::unexpected(member.error());
  if (!*member)
    return reject(XksError::kValidation, std::string(name) + " is required");
  return std::move(**member);
}

tl::expected<wire::RequestMetadata, Rejection> parse_metadata(wire::Operation operation,
                                                              const json::object& body) {
  const json::value* value = body.if_contains("requestMetadata");
  if (value == nullptr || !value->is_object()) {
    return reject(XksError::kValidation, "requestMetadata is required");
  }
  const json::object& fields = value->get_object();
  wire::RequestMetadata metadata;
  for (const wire::RequestMetadataField& field : wire::kRequestMetadataFields) {
    auto member = string_member(fields, field.name);
    if (!member)
      return tl::unexpected(member.error());
    if (*member) {
      metadata.*field.member = std::string(**member);
    } else if (field.required_for(operation)) {
      return reject(XksError::kValidation,
                    "requestMetadata." + std::string(field.name) + " is required");
    }
  }
  return metadata;
}

tl::expected<void, Rejection> require_aes_gcm(const json::object& body) {
  auto algorithm = required_string(body, "encryptionAlgorithm");
  if (!algorithm)
    return tl::unexpected(algorithm.error());
  if (*algorithm != "AES_GCM")
    return reject(XksError::kValidation, "encryptionAlgorithm must be AES_GCM");
  return {};
}

tl::expected<std::optional<Bytes>, Rejection> aad_member(const json::object& body) {
  auto aad = base64_member(body, "additionalAuthenticatedData");
  if (aad && *aad && (*aad)->size() > kMaxAadBytes) {
    return reject(XksError::kValidation, "additionalAuthenticatedData exceeds 8192 bytes");
  }
  return aad;
}

tl::expected<EncryptRequest, Rejection> parse_encrypt(const json::object& body) {
  EncryptRequest request;
  auto plaintext = required_base64(body, "plaintext");
  if (!plaintext)
    return tl::unexpected(plaintext.error());
  request.plaintext = std::move(*plaintext);
  if (auto algorithm = require_aes_gcm(body); !algorithm)
    return tl::unexpected(algorithm.error());
  auto aad = aad_member(body);
  if (!aad)
    return tl::unexpected(aad.error());
  request.aad = std::move(*aad);
  auto cdiv_algorithm = string_member(body, "ciphertextDataIntegrityValueAlgorithm");
  if (!cdiv_algorithm)
    return tl::unexpected(cdiv_algorithm.error());
  if (*cdiv_algorithm) {
    if (**cdiv_algorithm != "SHA_256") {
      return reject(XksError::kValidation, "ciphertextDataIntegrityValueAlgorithm must be SHA_256");
    }
    request.cdiv = true;
  }
  return request;
}

tl::expected<DecryptRequest, Rejection> parse_decrypt(const json::object& body) {
  DecryptRequest request;
  auto ciphertext = required_base64(body, "ciphertext");
  if (!ciphertext)
    return tl::unexpected(ciphertext.error());
  request.ciphertext = std::move(*ciphertext);
  if (auto algorithm = require_aes_gcm(body); !algorithm)
    return tl::unexpected(algorithm.error());
  auto iv = required_base64(body, "initializationVector");
  if (!iv)
    return tl::unexpected(iv.error());
  request.iv = std::move(*iv);
  auto tag = required_base64(body, "authenticationTag");
  if (!tag)
    return tl::unexpected(tag.error());
  request.tag = std::move(*tag);
  auto aad = aad_member(body);
  if (!aad)
    return tl::unexpected(aad.error());
  request.aad = std::move(*aad);
  auto metadata = base64_member(body, "ciphertextMetadata");
  if (!metadata)
    return tl::unexpected(metadata.error());
  if (*metadata && (*metadata)->size() > kMaxCiphertextMetadataBytes) {
    return reject(XksError::kValidation, "ciphertextMetadata exceeds 20 bytes");
  }
  request.ciphertext_metadata = std::move(*metadata);
  if (request.iv.size() != 12 && request.iv.size() != 16) {
    return reject(XksError::kInvalidCiphertext, "initializationVector must be 12 or 16 bytes");
  }
  if (request.tag.size() != 16) {
    return reject(XksError::kInvalidCiphertext, "authenticationTag must be 16 bytes");
  }
  return request;
}

std::string compact(const json::object& object) {
  return json::serialize(object);
}

}  // namespace

tl::expected<XksRequest, Rejection> parse_request(wire::Operation operation,
                                                  std::string_view body) {
  // The parsed tree lives on the stack for a request of ordinary size: nothing of it outlives
  // this call (what is kept is copied out), and a request then costs no allocation for it.
  unsigned char storage[4096];
  json::monotonic_resource resource(storage, sizeof storage);
  boost::system::error_code error;
  json::value parsed = json::parse(body, error, &resource);
  if (error)
    return reject(XksError::kValidation, "body is not valid JSON");
  if (!parsed.is_object())
    return reject(XksError::kValidation, "body must be a JSON object");
  const json::object& object = parsed.get_object();

  XksRequest request;
  auto metadata = parse_metadata(operation, object);
  if (!metadata)
    return tl::unexpected(metadata.error());
  request.metadata = std::move(*metadata);
  if (operation == wire::Operation::kEncrypt) {
    auto encrypt = parse_encrypt(object);
    if (!encrypt)
      return tl::unexpected(encrypt.error());
    request.encrypt = std::move(*encrypt);
  } else if (operation == wire::Operation::kDecrypt) {
    auto decrypt = parse_decrypt(object);
    if (!decrypt)
      return tl::unexpected(decrypt.error());
    request.decrypt = std::move(*decrypt);
  }
  return request;
}

std::string metadata_response(std::span<const std::string_view> key_usage, bool enabled) {
  json::array usage;
  for (std::string_view name : key_usage)
    usage.emplace_back(name);
  return compact({{"keySpec", "AES_256"},
                  {"keyUsage", std::move(usage)},
                  {"keyStatus", enabled ? "ENABLED" : "DISABLED"}});
}

std::string encrypt_response(std::span<const std::uint8_t> ciphertext,
                             std::span<const std::uint8_t> iv, std::span<const std::uint8_t> tag,
                             std::span<const std::uint8_t> ciphertext_metadata,
                             std::string_view cdiv_value) {
  // Written out directly: every value is base64, which JSON never escapes.
  std::string response;
  response.reserve(160 + (ciphertext.size() + 2) / 3 * 4);
  auto member = [&response](std::string_view name, std::string_view value) {
    response += response.empty() ? "{\"" : ",\"";
    response += name;
    response += "\":\"";
    response += value;
    response += '"';
  };
  member("authenticationTag", wire::base64_encode(tag));
  member("ciphertext", wire::base64_encode(ciphertext));
  member("initializationVector", wire::base64_encode(iv));
  if (!ciphertext_metadata.empty())
    member("ciphertextMetadata", wire::base64_encode(ciphertext_metadata));
  if (!cdiv_value.empty())
    member("ciphertextDataIntegrityValue", cdiv_value);
  response += '}';
  return response;
}

std::string decrypt_response(std::span<const std::uint8_t> plaintext) {
  return compact({{"plaintext", wire::base64_encode(plaintext)}});
}

std::string health_response(int fleet_size, std::string_view vendor, std::string_view model,
                            std::string_view ekm_vendor, std::span<const FleetMember> fleet) {
  json::array members;
  for (const FleetMember& member : fleet) {
    members.push_back(json::object{
        {"id", member.id}, {"model", member.model}, {"healthStatus", member.health_status}});
  }
  return compact({{"xksProxyFleetSize", fleet_size},
                  {"xksProxyVendor", vendor},
                  {"xksProxyModel", model},
                  {"ekmVendor", ekm_vendor},
                  {"ekmFleetDetails", std::move(members)}});
}

std::string cdiv(std::span<const std::uint8_t> aad, std::span<const std::uint8_t> metadata,
                 std::span<const std::uint8_t> iv, std::span<const std::uint8_t> ciphertext,
                 std::span<const std::uint8_t> tag) {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  std::uint8_t digest[32];
  unsigned int length = 0;
  bool ok = EVP_DigestInit_ex(context, EVP_sha256(), nullptr) == 1;
  for (auto part : {aad, metadata, iv, ciphertext, tag}) {
    ok = ok && EVP_DigestUpdate(context, part.data(), part.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(context, digest, &length) == 1;
  EVP_MD_CTX_free(context);
  return ok ? wire::base64_encode(digest) : std::string();
}

}  // namespace xks::proxy
