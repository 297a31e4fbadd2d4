// External key id -> secret-key object (by CKA_LABEL), with its attributes, cached so that a
// request costs no lookup calls. Two objects with one label are an error, never a silent pick.
#pragma once

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

  bool is_aes_256() const { return key_type == CKK_AES && value_length == 32; }
  // XKS keyUsage names (upper case), in a fixed order; at most six, within the spec's ten.
  std::vector<std::string_view> key_usage() const;
};

class KeyDirectory {
 public:
  // The key labelled `label`: from the cache, or looked up with `session` and cached.
  HsmResult<KeyInfo> find(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session, std::string_view label);
  // Drops a cached entry whose handle the HSM no longer accepts.
  void forget(std::string_view label);

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const {
      return std::hash<std::string_view>{}(text);
    }
  };

  std::shared_mutex mutex_;
  std::unordered_map<std::string, KeyInfo, StringHash, std::equal_to<>> keys_;
};

// Every secret key labelled `label` (none, one, or — misconfigured — several); every secret
// key on the token when `label` is absent.
HsmResult<std::vector<CK_OBJECT_HANDLE>> find_secret_keys(CK_FUNCTION_LIST& api,
                                                          CK_SESSION_HANDLE session,
                                                          std::optional<std::string_view> label);
HsmResult<KeyInfo> read_key_info(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                 CK_OBJECT_HANDLE handle);
HsmResult<std::string> read_label(CK_FUNCTION_LIST& api, CK_SESSION_HANDLE session,
                                  CK_OBJECT_HANDLE handle);

}  // namespace xks::hsm
