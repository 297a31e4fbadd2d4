// Key administration for operators (the `xks-proxy keys` commands): create AES-256 keys with
// exactly the usages asked for — pkcs11-tool cannot make encrypt-only or decrypt-only keys —,
// rotate, retire, disable and enable them (see key_directory.h for how versions and states are
// kept on the token), and list them with their versions.
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

// `keys rotate`: version `version` of the key (one above every version it has), protected as
// create_aes_key makes keys; it encrypts (Encrypt uses it from then on) and decrypts when the
// key's version 1 does. `material` as for create_aes_key. A fleet rotates every HSM to the same
// version number with the same material.
HsmResult<KeyInfo> rotate_key(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                              std::string_view label, std::uint32_t version,
                              std::optional<std::span<const std::uint8_t, 32>> material = {});
// The key's newest version number.
HsmResult<std::uint32_t> newest_version(const Pkcs11Module& module, CK_SLOT_ID slot,
                                        std::string_view pin, std::string_view label);
// Destroys version `version` of the key (undoing a rotation that did not reach every HSM).
HsmResult<void> destroy_key_version(const Pkcs11Module& module, CK_SLOT_ID slot,
                                    std::string_view pin, std::string_view label,
                                    std::uint32_t version);
// `keys retire` (encrypt false: the version only decrypts) and its reverse.
HsmResult<void> set_version_encrypt(const Pkcs11Module& module, CK_SLOT_ID slot,
                                    std::string_view pin, std::string_view label,
                                    std::uint32_t version, bool encrypt);
// `keys disable|enable`: the disabled mark in every version's tag (see key_directory.h).
HsmResult<void> set_key_disabled(const Pkcs11Module& module, CK_SLOT_ID slot, std::string_view pin,
                                 std::string_view label, bool disabled);

struct KeyListing {
  std::string label;
  std::vector<KeyInfo> versions;  // ascending by version
  bool ambiguous = false;         // two objects share a version: the key is unusable
};

HsmResult<std::vector<KeyListing>> list_keys(const Pkcs11Module& module, CK_SLOT_ID slot,
                                             std::string_view pin);

}  // namespace xks::hsm
