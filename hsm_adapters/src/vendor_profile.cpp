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
