// Opening a PKCS#11 session that is logged in as the normal user.
#pragma once

#include <string_view>

#include "xks/hsm/hsm_error.h"
#include "xks/hsm/pkcs11.h"

namespace xks::hsm {

// `flags` adds to CKF_SERIAL_SESSION (e.g. CKF_RW_SESSION). Login is per application, so only
// a session that finds the token logged out calls C_Login — once, never retried here.
HsmResult<CK_SESSION_HANDLE> open_logged_in_session(CK_FUNCTION_LIST& api, CK_SLOT_ID slot,
                                                    CK_FLAGS flags, std::string_view pin);

}  // namespace xks::hsm
