// How each HSM wants AES-GCM driven: above all, who makes the IV and where it comes back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "xks/hsm/pkcs11.h"

namespace xks::hsm {

enum class IvSource : std::uint8_t {
  kProxyFromHsmRng,     // the proxy draws 12 bytes from C_GenerateRandom and passes them in
                        // (SoftHSM: it accepts any IV, even an empty one, so one is always given)
  kHsmFillsBuffer,      // the HSM writes its IV into a zeroed 12-byte pIv (CloudHSM, nShield)
  kHsmAppendsToOutput,  // no IV is passed; the HSM appends its IV after the tag (Luna)
};

struct VendorProfile {
  std::string name;
  IvSource iv_source = IvSource::kProxyFromHsmRng;
  // What C_Decrypt returns when the GCM tag does not verify. SoftHSM 2.6 says
  // CKR_GENERAL_ERROR (found by its tamper tests); the standard code is ENCRYPTED_DATA_INVALID.
  CK_RV bad_tag_rv = CKR_ENCRYPTED_DATA_INVALID;
  // Sizing (README "Sizing the HSM sessions"). A network HSM's calls block on round trips, so a
  // backend needs a thread per call it keeps in flight: executor threads = sessions, and enough
  // sessions to ride out a latency spike at KMS's rate. An in-process module (SoftHSM) is
  // CPU-bound: more threads than cores only add switches (measured: 22.5k req/s with 2 threads
  // on 2 cores, 16.8k with 8).
  bool in_process = false;
  std::size_t default_sessions = 32;
  // Whether the token keeps data objects (CKO_DATA), where the keys' encryption counts are
  // recorded (KeyDirectory). NSS softoken refuses token data objects (CKR_ATTRIBUTE_VALUE_INVALID
  // whatever the template): there the counts are this process's only.
  bool token_data_objects = true;

  bool operator==(const VendorProfile&) const = default;
};

// "softhsm", "nss", "cloudhsm", "nshield" or "luna"; a generic profile is built from options.
std::optional<VendorProfile> vendor_profile(std::string_view name);
std::optional<IvSource> iv_source(std::string_view name);  // "proxy", "hsm-buffer", "hsm-append"

}  // namespace xks::hsm
