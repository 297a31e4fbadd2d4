// External key id -> its versions: the secret-key objects labelled with it, with their
// attributes, cached so that a request costs no lookup calls (README "Key lifecycle").
//
// On the token, every secret key whose CKA_LABEL is the external key id is a version of that
// key. The proxy's keys carry a CKA_ID tag (ASCII) "xks:v=<N>;created=<YYYY-MM-DD>" with
// ";disabled" while the key is disabled (`xks-proxy keys disable`); a key without such a tag is
// version 1, the original (made before versioning, or by another tool; disabling it tags it,
// keeping its own CKA_ID in ";was=<hex>" to restore on enable). A key the proxy makes has no
// earlier id: its ";was=" holds 16 random hex digits instead, which make its CKA_ID unique on
// the token (NSS softoken takes two secret keys with one CKA_ID for one object, and replaces
// the first) in a form every earlier version of the proxy reads. Two objects with one label and
// one version are an error, never a silent pick. A version whose CKA_ENCRYPT is false only
// decrypts (retired, or made so). (Not CKA_START_DATE / CKA_END_DATE: SoftHSM 2.6 cannot read
// back a date it stored for a private object.)
#pragma once

#include <atomic>
#include <chrono>
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

// AES-GCM with random 96-bit IVs is safe for at most 2^32 encryptions under one key (NIST SP
// 800-38D §8.3); the proxy warns at a quarter of that, leaving time to rotate.
inline constexpr std::uint64_t kEncryptionLimit = std::uint64_t{1} << 32;
inline constexpr std::uint64_t kEncryptionWarning = kEncryptionLimit / 4;

// Encryptions this process made with one cached key version, kept across re-reads of the key.
// From time to time they are added to the version's count object on the token (KeyDirectory::
// record_encryptions), which every proxy on the token adds to: so it holds the version's
// lifetime count, short of what is not yet recorded (at most a minute's worth, or what a crash
// lost) and of the rare lost update when two proxies record the same version at one instant.
// The count object is a data object of its own (CKO_DATA, private, CKA_LABEL the key's label,
// CKA_APPLICATION kEncryptionCountApplication + " v=<N>", CKA_VALUE the count in decimal,
// replaced by a new object at each recording): the
// key object itself is never written while it serves (SoftHSM, for one, may not find a key
// whose object file is being rewritten), and a key another tool made keeps its attributes.
struct EncryptionCount {
  std::atomic<std::uint64_t> made{0};      // since start
  std::atomic<std::uint64_t> recorded{0};  // of `made`, added to the count object
  std::chrono::steady_clock::time_point recorded_at = std::chrono::steady_clock::now();
};

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
  bool tagged = false;  // CKA_ID is the proxy's tag (else another tool's id, kept in `was`)
  std::uint32_t version = 1;
  std::string created;    // YYYY-MM-DD, or "" (not made by the proxy)
  bool disabled = false;  // the key is disabled
  std::string was;        // hex of the CKA_ID the key had before the proxy tagged it (random for a
                          // key the proxy made), or ""
  std::uint64_t encryptions = 0;  // in the count object when the token was last read
  // This process's count for the version; set on KeyDirectory's entries only.
  std::shared_ptr<EncryptionCount> count;

  // The version's encryptions as far as this process knows: recorded and not yet recorded.
  std::uint64_t lifetime_encryptions() const;

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
  // Whether record_encryptions has anything to do (with `all`: anything at all; else only a
  // version whose count has waited a minute, or grown by 2^20).
  bool encryptions_to_record(bool all) const;
  // Adds each version's unrecorded encryptions to its count object (add_encryptions);
  // `session` must be read-write. A failed write is retried at the next call; nothing is lost.
  HsmResult<void> record_encryptions(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session, bool all);

  struct VersionCount {
    std::string label;
    std::uint32_t version = 0;
    std::uint64_t made = 0;      // by this process
    std::uint64_t lifetime = 0;  // KeyInfo::lifetime_encryptions
  };
  // Every cached version's counts, for metrics and warnings.
  std::vector<VersionCount> encryption_counts() const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

  // A fresh reading of a key with each version's count attached (made on first sight; kept for
  // the process's life, so that a key read again or forgotten keeps its count). Under mutex_.
  std::shared_ptr<const KeyVersions> counted(const std::string& label, KeyVersions key);

  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const KeyVersions>, StringHash, std::equal_to<>>
      keys_;
  std::unordered_map<std::string,
                     std::unordered_map<std::uint32_t, std::shared_ptr<EncryptionCount>>>
      counts_;
  mutable std::mutex record_mutex_;  // one record_encryptions at a time; guards recorded_at
};

// "active" (encrypts), "decrypt-only" (retired, or made so) or "unusable" (neither).
std::string_view version_state(const KeyInfo& version);

// The highest version: ciphertextMetadata holds it in 16 bits.
inline constexpr std::uint32_t kMaxKeyVersion = 0xffff;

// The CKA_ID tag of `key` as described above, and its reading into `key`. An id that is not
// exactly a tag (unknown parts, a version beyond kMaxKeyVersion, a malformed date or hex) is
// another tool's: version 1, enabled, and the id kept in `was`.
std::string key_tag(const KeyInfo& key);
// Lower-case hex of `bytes`, as the tag's was= part holds it.
std::string hex(std::string_view bytes);
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

// The count objects' CKA_APPLICATION, before " v=<N>" (see EncryptionCount).
inline constexpr std::string_view kEncryptionCountApplication = "xks-proxy encryptions";
struct EncryptionCountObject {
  std::vector<CK_OBJECT_HANDLE> handles;  // none yet; more than one for an instant
  std::uint64_t value = 0;                // the highest they hold
};
// The count objects of version `version` of the key labelled `label` (a value that is not a
// decimal count reads as 0).
HsmResult<EncryptionCountObject> read_encryption_count(CK_FUNCTION_LIST& api,
                                                       CK_SESSION_HANDLE session,
                                                       std::string_view label,
                                                       std::uint32_t version);
// Adds `adding` to it (saturating): makes an object with the new count, then destroys the
// old; `session` read-write.
HsmResult<void> add_encryptions(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                std::string_view label, std::uint32_t version,
                                std::uint64_t adding);

}  // namespace xks::hsm
