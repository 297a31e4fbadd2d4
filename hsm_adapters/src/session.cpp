// Opening a logged-in session.
#include "xks/hsm/session.h"

namespace xks::hsm {

HsmResult<CK_SESSION_HANDLE> open_logged_in_session(CK_FUNCTION_LIST& api, CK_SLOT_ID slot,
                                                    CK_FLAGS flags, std::string_view pin) {
  CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
  if (CK_RV rv = api.C_OpenSession(slot, CKF_SERIAL_SESSION | flags, nullptr, nullptr, &handle);
      rv != CKR_OK) {
    return tl::unexpected(HsmError::from_rv("C_OpenSession", rv));
  }
  CK_SESSION_INFO info{};
  CK_RV rv = api.C_GetSessionInfo(handle, &info);
  const char* failed = "C_GetSessionInfo";
  if (rv == CKR_OK &&
      (info.state == CKS_RO_PUBLIC_SESSION || info.state == CKS_RW_PUBLIC_SESSION)) {
    rv = api.C_Login(handle, CKU_USER,
                     reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(pin.data())), pin.size());
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
      rv = CKR_OK;
    failed = "C_Login";
  }
  if (rv != CKR_OK) {
    api.C_CloseSession(handle);
    return tl::unexpected(HsmError::from_rv(failed, rv));
  }
  return handle;
}

}  // namespace xks::hsm
