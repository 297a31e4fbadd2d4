// New SigV4 credentials in the format AWS KMS accepts for an external key store, and the JSON
// file the KMS console imports.
#pragma once

#include <string>
#include <string_view>

#include "xks/sigv4/credential.h"

namespace xks::proxy {

// Access key id: 20 characters of [A-Z2-7]; secret: base64 of 32 random bytes (256 bits).
sigv4::Credential generate_credential();

// {"XksProxyUriPath":..,"XksProxyAuthenticationCredential":{"AccessKeyId":..,"RawSecretAccessKey":..}}
std::string kms_console_json(std::string_view uri_path, const sigv4::Credential& credential);

}  // namespace xks::proxy
