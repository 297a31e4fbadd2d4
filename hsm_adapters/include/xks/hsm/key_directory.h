// External key id -> its versions: the secret-key objects labelled with it, with their
// attributes, cached so that a request costs no lookup calls (README "Key lifecycle").
//
// On the token, every secret key whose CKA_LABEL is the external key id is a version of that
// key. The proxy's keys carry a CKA_ID tag (ASCII) "xks:v=<N>;created=<YYYY-MM-DD>" with
// ";disabled" while the key is disabled (`xks-proxy keys disable`); a key without such a tag is
// version 1, the original (made before versioning, or by another tool; disabling it tags it,
// keeping its own CKA_ID in ";was=<hex>" to restore on enable). Two objects with one label and
// one version are an error, never a silent pick. A version whose CKA_ENCRYPT is false only
// decrypts (retired, or made so). (Not CKA_START_DATE / CKA_END_DATE: SoftHSM 2.6 cannot read
// back a date it stored for a private object.)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "xks/hsm/hsm_error.h"
#include "xks/hsm/pkcs11.h"

namespace xks::hsm {

struct KeyInfo {
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_ULONG value_length = 0;  // bytes
  bool encrypt = false;
  bool decrypt = false;
  bool sign = false;
  bool verify = false;
  bool wrap = false;
  bool unwrap = false;
  // Protection: a key that can leave the HSM in the clear is not one to trust with data.
  bool sensitive = false;
  bool extractable = true;
  bool always_sensitive = false;
  bool never_extractable = false;
  // From the CKA_ID tag (see above).
  std::uint32_t version = 1;
  std::string created;    // YYYY-MM-DD, or "" (not made by the proxy)
  bool disabled = false;  // the key is disabled
  std::string was;        // hex of the CKA_ID the key had before the proxy tagged it, or ""

  bool is_aes_256() const { return key_type == CKK_AES && value_length == 32; }
  bool is_protected() const { return sensitive && !extractable; }
  // XKS keyUsage names (upper case), in a fixed order; at most six, within the spec's ten.
  std::vector<std::string_view> key_usage() const;
};

// An external key's versions; never empty.
struct KeyVersions {
  std::vector<KeyInfo> versions;  // ascending by version

  bool disabled() const;
  // The version Encrypt uses: the newest that allows encryption, else the newest.
  const KeyInfo& active() const;
  const KeyInfo& original() const { return versions.front(); }
  // Version `number`; null when the key has none.
  const KeyInfo* find(std::uint32_t number) const;
};

class KeyDirectory {
 public:
  // The versions of the key labelled `label`: from the cache, or looked up with `session` and
  // cached.
  // (Shared, not copied: a request costs no allocation here.)
  HsmResult<std::shared_ptr<const KeyVersions>> find(CK_FUNCTION_LIST& api,
                                                     CK_SESSION_HANDLE session,
                                                     std::string_view label);
  // Drops a cached entry whose handles the HSM no longer accepts.
  void forget(std::string_view label);
  // Reads every cached key again (versions made, retired, disabled since) and calls `changed`
  // with a description of each difference; a key gone from the token is dropped.
  HsmResult<void> refresh(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                          const std::function<void(const std::string& change)>& changed);

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

  std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const KeyVersions>, StringHash, std::equal_to<>>
      keys_;
};

// "active" (encrypts), "decrypt-only" (retired, or made so) or "unusable" (neither).
std::string_view version_state(const KeyInfo& version);

// The highest version: ciphertextMetadata holds it in 16 bits.
inline constexpr std::uint32_t kMaxKeyVersion = 0xffff;

// The CKA_ID tag of `key` as described above, and its reading into `key`. An id that is not
// exactly a tag (unknown parts, a version beyond kMaxKeyVersion, a malformed date or hex) is
// another tool's: version 1, enabled, and the id kept in `was`.
std::string key_tag(const KeyInfo& key);
void read_key_tag(std::string_view id, KeyInfo& key);
// The bytes `was` (lower-case hex) stands for.
std::string unhex(std::string_view text);

// Every secret key labelled `label` (none, one, or — misconfigured — several); every secret
// key on the token when `label` is absent.
HsmResult<std::vector<CK_OBJECT_HANDLE>> find_secret_keys(CK_FUNCTION_LIST& api,
                                                          CK_SESSION_HANDLE session,
                                                          std::optional<std::string_view> label);
HsmResult<KeyInfo> read_key_info(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                 CK_OBJECT_HANDLE handle);
// Every version of the key labelled `label`, read from the token: kKeyNotFound when there is
// none, kDuplicateKey when two share a version.
HsmResult<KeyVersions> read_key_versions(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                         std::string_view label);
HsmResult<std::string> read_label(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                  CK_OBJECT_HANDLE handle);

}  // namespace xks::hsm
