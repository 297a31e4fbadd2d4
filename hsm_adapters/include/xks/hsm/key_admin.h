// Key administration for operators (the `xks-proxy keys` commands): create AES-256 keys with
// exactly the usages asked for — pkcs11-tool cannot make encrypt-only or decrypt-only keys —
// and list keys with duplicate labels flagged.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xks/hsm/hsm_error.h"
#include "xks/hsm/key_directory.h"
#include "xks/hsm/pkcs11_module.h"

namespace xks::hsm {

struct KeyUsageRequest {
  bool encrypt = true;
  bool decrypt = true;
};

// "encrypt,decrypt", "encrypt", "decrypt" or "none".
std::optional<KeyUsageRequest> parse_key_usage(std::string_view text);

// A new token key: AES-256, sensitive, not extractable, with only the requested usages.
// Refuses a label that already names a secret key. Generated in the HSM, or, given `material`
// (32 bytes), made from it: the same key on every HSM of a fleet; the caller wipes its copy.
HsmResult<KeyInfo> create_aes_key(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                                  std::string_view label, KeyUsageRequest usage,
                                  std::optional<std::span<const std::uint8_t, 32>> material = {});

struct KeyListing {
  std::string label;
  KeyInfo info;
  std::size_t copies = 1;  // more than one: the label is ambiguous and the key unusable
};

HsmResult<std::vector<KeyListing>> list_keys(const Pkcs11Module& module, CK_SLOT_ID slot,
                                             std::string_view pin);

}  // namespace xks::hsm
