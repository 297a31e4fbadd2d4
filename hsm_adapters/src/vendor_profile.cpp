// The built-in vendor profiles.
#include "xks/hsm/vendor_profile.h"

namespace xks::hsm {

std::optional<VendorProfile> vendor_profile(std::string_view name) {
  if (name == "softhsm") {
    return VendorProfile{.name = "softhsm",
                         .iv_source = IvSource::kProxyFromHsmRng,
                         .bad_tag_rv = CKR_GENERAL_ERROR,
                         .in_process = true,
                         .default_sessions = 8};
  }
  // NSS softoken (libsoftokn3): in process like SoftHSM, but with the standard bad-tag code.
  // It refuses an empty IV and needs ulIvBits (the proxy always gives both), its C_Encrypt size
  // query is 16 bytes short (the proxy sizes its buffers itself), and it keeps no token data
  // objects.
  if (name == "nss") {
    return VendorProfile{.name = "nss",
                         .iv_source = IvSource::kProxyFromHsmRng,
                         .bad_tag_rv = CKR_ENCRYPTED_DATA_INVALID,
                         .in_process = true,
                         .default_sessions = 8,
                         .token_data_objects = false};
  }
  if (name == "cloudhsm")
    return VendorProfile{"cloudhsm", IvSource::kHsmFillsBuffer};
  if (name == "nshield")
    return VendorProfile{"nshield", IvSource::kHsmFillsBuffer};
  if (name == "luna")
    return VendorProfile{"luna", IvSource::kHsmAppendsToOutput};
  return std::nullopt;
}

std::optional<IvSource> iv_source(std::string_view name) {
  if (name == "proxy")
    return IvSource::kProxyFromHsmRng;
  if (name == "hsm-buffer")
    return IvSource::kHsmFillsBuffer;
  if (name == "hsm-append")
    return IvSource::kHsmAppendsToOutput;
  return std::nullopt;
}

}  // namespace xks::hsm
