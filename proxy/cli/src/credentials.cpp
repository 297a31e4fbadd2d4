// SigV4 credential generation.
#include "xks/proxy/cli/credentials.h"

#include <openssl/rand.h>

#include <boost/json.hpp>
#include <stdexcept>
#include <vector>

#include "xks/wire/base64.h"

namespace xks::proxy {

namespace {

std::vector<std::uint8_t> random_bytes(std::size_t count) {
  std::vector<std::uint8_t> bytes(count);
  if (RAND_bytes(bytes.data(), static_cast<int>(count)) != 1) {
    throw std::runtime_error("the random number generator failed");
  }
  return bytes;
}

}  // namespace

sigv4::Credential generate_credential() {
  constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  sigv4::Credential credential;
  for (std::uint8_t byte : random_bytes(20))
    credential.access_key_id.push_back(kBase32[byte % 32]);
  credential.secret_access_key = wire::base64_encode(random_bytes(32));
  return credential;
}

std::string kms_console_json(std::string_view uri_path, const sigv4::Credential& credential) {
  boost::json::object file{
      {"XksProxyUriPath", uri_path},
      {"XksProxyAuthenticationCredential",
       boost::json::object{{"AccessKeyId", credential.access_key_id},
                           {"RawSecretAccessKey", credential.secret_access_key}}}};
  return boost::json::serialize(file) + "\n";
}

}  // namespace xks::proxy
