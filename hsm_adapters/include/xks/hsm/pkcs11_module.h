// A loaded PKCS#11 module: dlopen, C_GetFunctionList, C_Initialize with OS locking (and the
// module's own initialisation parameters, if it takes any), and the token the configuration
// names — by label, serial number or slot id, never "the first slot".
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "xks/hsm/hsm_error.h"
#include "xks/hsm/pkcs11.h"

namespace xks::hsm {

// What to load and how to initialise it.
struct ModuleSpec {
  std::string path;  // the library, as dlopen takes it
  // Given to C_Initialize in CK_C_INITIALIZE_ARGS.pReserved when not empty (p11-kit's
  // x-init-reserved): modules such as NSS softoken take their parameters there, e.g.
  // "configdir='sql:/var/lib/xks/nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' flags=".
  std::string init_reserved = {};

  bool operator==(const ModuleSpec&) const = default;
};

struct TokenSelector {
  enum class By : std::uint8_t { kLabel, kSerial, kSlotId };
  By by = By::kLabel;
  std::string value;  // label or serial as the token reports it (padding trimmed), or slot id

  bool operator==(const TokenSelector&) const = default;
};

struct TokenInfo {
  CK_SLOT_ID slot_id = 0;
  std::string label;
  std::string manufacturer;
  std::string model;
  std::string serial;
  CK_VERSION hardware_version{};
  CK_VERSION firmware_version{};
};

class Pkcs11Module {
 public:
  // Loads and initialises the module. One instance per module per process: PKCS#11
  // initialisation is process-wide, so loading a module again with other init_reserved
  // parameters is an error.
  static HsmResult<std::shared_ptr<Pkcs11Module>> load(const ModuleSpec& spec);

  ~Pkcs11Module();  // C_Finalize, then dlclose
  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;

  CK_FUNCTION_LIST& api() const { return *api_; }
  const std::string& path() const { return path_; }

  // The one present token matching `selector`; none or several is an error naming them.
  HsmResult<TokenInfo> find_token(const TokenSelector& selector) const;
  HsmResult<TokenInfo> token_info(CK_SLOT_ID slot_id) const;

 private:
  Pkcs11Module(ModuleSpec spec, void* library, CK_FUNCTION_LIST* api);

  std::string path_;
  std::string init_reserved_;  // given to C_Initialize; kept while the module lives
  bool initialized_ = false;   // C_Initialize succeeded: the destructor finalises
  void* library_;
  CK_FUNCTION_LIST* api_;
};

}  // namespace xks::hsm
