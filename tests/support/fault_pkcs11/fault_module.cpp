// A PKCS#11 module that wraps a real one and misbehaves as its control file says, re-read
// whenever it changes: XKS_FAULT_CONTROL, or else the module's own path with ".ctl" for ".so".
// The real module is the one named in the module's own path with ".target" for ".so" when that
// file exists, else XKS_FAULT_TARGET (e.g. SoftHSM); C_Initialize's arguments go to it as given.
// Copies of the module (DIR/backend-1.so, DIR/backend-2.so) are separate instances, each
// steered by its own file: one fault module per HSM of a fleet, in front of one real module
// (initialised once; the copies share it) or, with .target files, of several. Lines:
//   delay <function> <milliseconds>            sleep before each call
//   fail <function> <CKR_NAME|0xHEX> every <n> every n-th call fails with that code
//   fail <function> <CKR_NAME|0xHEX> until <unix-ms>   calls fail until that time
//   hang <function> <milliseconds>             calls block that long (a stuck HSM)
//   iv hsm-buffer   the HSM writes its own IV into a zeroed pIv (CloudHSM, nShield)
//   iv hsm-append   no IV is passed; the HSM appends its IV after the tag (Luna)
//   iv zero         like hsm-buffer, but the IV never reaches the caller (a broken HSM)
// Functions: C_Login C_OpenSession C_GetSessionInfo C_FindObjectsInit C_EncryptInit C_Encrypt
// C_DecryptInit C_Decrypt C_GenerateRandom. Test support only.
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "xks/hsm/pkcs11.h"

namespace {

using Clock = std::chrono::system_clock;

struct Fault {
  long delay_ms = 0;
  long hang_ms = 0;
  CK_RV fail_rv = CKR_OK;
  long fail_every = 0;          // 0: not periodic
  long long fail_until_ms = 0;  // 0: no window
  long calls = 0;
};

enum class IvMode { kPassThrough, kHsmBuffer, kHsmAppend, kZero };

struct State {
  std::mutex mutex;
  CK_FUNCTION_LIST* target = nullptr;
  CK_FUNCTION_LIST wrapped{};
  std::map<std::string, Fault> faults;
  IvMode iv_mode = IvMode::kPassThrough;
  struct timespec control_mtime {};
  off_t control_size = -1;
  std::map<CK_SESSION_HANDLE, std::array<CK_BYTE, 12>> appended_ivs;  // hsm-append sessions
  std::string control_path;
  bool initialized_target = false;  // this copy initialised the real module (and finalises it)
};

State& state() {
  static State instance;
  return instance;
}

CK_RV parse_rv(const std::string& text) {
  static const std::map<std::string, CK_RV> kNames = {
      {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
      {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
      {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
      {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
      {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
      {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
      {"CKR_PIN_INCORRECT", CKR_PIN_INCORRECT},
      {"CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID},
      {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
      {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
      {"CKR_ENCRYPTED_DATA_INVALID", CKR_ENCRYPTED_DATA_INVALID},
  };
  if (auto found = kNames.find(text); found != kNames.end())
    return found->second;
  return std::strtoul(text.c_str(), nullptr, 0);
}

// Re-reads the control file when its mtime or size changed. Caller holds the mutex.
void refresh_control(State& s) {
  const char* path = s.control_path.c_str();
  struct stat info {};
  if (s.control_path.empty() || ::stat(path, &info) != 0) {
    s.faults.clear();
    s.iv_mode = IvMode::kPassThrough;
    s.control_size = -1;
    return;
  }
  if (info.st_size == s.control_size && info.st_mtim.tv_sec == s.control_mtime.tv_sec &&
      info.st_mtim.tv_nsec == s.control_mtime.tv_nsec) {
    return;
  }
  s.control_size = info.st_size;
  s.control_mtime = info.st_mtim;
  s.faults.clear();
  s.iv_mode = IvMode::kPassThrough;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) {
    std::istringstream words(line);
    std::string verb, function, value, mode;
    words >> verb;
    if (verb == "iv") {
      words >> mode;
      s.iv_mode = mode == "hsm-buffer"   ? IvMode::kHsmBuffer
                  : mode == "hsm-append" ? IvMode::kHsmAppend
                  : mode == "zero"       ? IvMode::kZero
                                         : IvMode::kPassThrough;
      continue;
    }
    words >> function >> value;
    Fault& fault = s.faults[function];
    if (verb == "delay")
      fault.delay_ms = std::stol(value);
    if (verb == "hang")
      fault.hang_ms = std::stol(value);
    if (verb == "fail") {
      fault.fail_rv = parse_rv(value);
      std::string how, amount;
      words >> how >> amount;
      if (how == "every")
        fault.fail_every = std::stol(amount);
      if (how == "until")
        fault.fail_until_ms = std::stoll(amount);
    }
  }
}

// Applies the control file's delay, hang and failure for `function`; CKR_OK means "call on".
CK_RV inject(const char* function) {
  State& s = state();
  long sleep_ms = 0;
  CK_RV rv = CKR_OK;
  {
    std::lock_guard lock(s.mutex);
    refresh_control(s);
    auto found = s.faults.find(function);
    if (found == s.faults.end())
      return CKR_OK;
    Fault& fault = found->second;
    ++fault.calls;
    sleep_ms = fault.delay_ms + fault.hang_ms;
    long long now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
            .count();
    if (fault.fail_rv != CKR_OK && ((fault.fail_every > 0 && fault.calls % fault.fail_every == 0) ||
                                    (fault.fail_until_ms > 0 && now_ms < fault.fail_until_ms))) {
      rv = fault.fail_rv;
    }
  }
  if (sleep_ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  return rv;
}

IvMode iv_mode() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  refresh_control(s);
  return s.iv_mode;
}

CK_FUNCTION_LIST& target() {
  return *state().target;
}

CK_RV fault_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                  CK_ULONG pin_length) {
  if (CK_RV injected = inject("C_Login"); injected != CKR_OK)
    return injected;
  return target().C_Login(session, user, pin, pin_length);
}

CK_RV fault_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application, CK_NOTIFY notify,
                        CK_SESSION_HANDLE_PTR session) {
  if (CK_RV injected = inject("C_OpenSession"); injected != CKR_OK)
    return injected;
  return target().C_OpenSession(slot, flags, application, notify, session);
}

CK_RV fault_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info) {
  if (CK_RV injected = inject("C_GetSessionInfo"); injected != CKR_OK)
    return injected;
  return target().C_GetSessionInfo(session, info);
}

CK_RV fault_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR query, CK_ULONG count) {
  if (CK_RV injected = inject("C_FindObjectsInit"); injected != CKR_OK)
    return injected;
  return target().C_FindObjectsInit(session, query, count);
}

CK_RV fault_GenerateRandom(CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG length) {
  if (CK_RV injected = inject("C_GenerateRandom"); injected != CKR_OK)
    return injected;
  return target().C_GenerateRandom(session, out, length);
}

CK_RV fault_EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                        CK_OBJECT_HANDLE key) {
  if (CK_RV injected = inject("C_EncryptInit"); injected != CKR_OK)
    return injected;
  IvMode mode = iv_mode();
  if (mode == IvMode::kPassThrough || mechanism == nullptr || mechanism->mechanism != CKM_AES_GCM ||
      mechanism->pParameter == nullptr) {
    return target().C_EncryptInit(session, mechanism, key);
  }
  // Emulate an HSM that makes its own IV.
  auto* params = static_cast<CK_GCM_PARAMS*>(mechanism->pParameter);
  std::array<CK_BYTE, 12> iv{};
  if (CK_RV rv = target().C_GenerateRandom(session, iv.data(), iv.size()); rv != CKR_OK) {
    return rv;
  }
  CK_GCM_PARAMS inner = *params;
  inner.pIv = iv.data();
  inner.ulIvLen = iv.size();
  inner.ulIvBits = 96;
  CK_MECHANISM inner_mechanism{CKM_AES_GCM, &inner, sizeof inner};
  if (mode == IvMode::kHsmAppend) {
    if (params->pIv != nullptr || params->ulIvLen != 0)
      return CKR_MECHANISM_PARAM_INVALID;
  } else if (params->pIv == nullptr || params->ulIvLen != 12 ||
             std::any_of(params->pIv, params->pIv + 12, [](CK_BYTE b) { return b != 0; })) {
    return CKR_MECHANISM_PARAM_INVALID;  // these HSMs want a zeroed 12-byte buffer
  }
  CK_RV rv = target().C_EncryptInit(session, &inner_mechanism, key);
  if (rv != CKR_OK)
    return rv;
  if (mode == IvMode::kHsmBuffer)
    std::memcpy(params->pIv, iv.data(), iv.size());
  if (mode == IvMode::kHsmAppend) {
    std::lock_guard lock(state().mutex);
    state().appended_ivs[session] = iv;
  }
  return CKR_OK;
}

CK_RV fault_Encrypt(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_length,
                    CK_BYTE_PTR out, CK_ULONG_PTR out_length) {
  if (CK_RV injected = inject("C_Encrypt"); injected != CKR_OK)
    return injected;
  std::array<CK_BYTE, 12> iv{};
  bool append = false;
  {
    std::lock_guard lock(state().mutex);
    auto found = state().appended_ivs.find(session);
    if (found != state().appended_ivs.end()) {
      iv = found->second;
      append = true;
      state().appended_ivs.erase(found);
    }
  }
  if (!append)
    return target().C_Encrypt(session, data, data_length, out, out_length);
  if (out == nullptr || *out_length < data_length + 16 + 12) {
    *out_length = data_length + 16 + 12;
    return out == nullptr ? CKR_OK : CKR_BUFFER_TOO_SMALL;
  }
  CK_ULONG length = *out_length - 12;
  CK_RV rv = target().C_Encrypt(session, data, data_length, out, &length);
  if (rv != CKR_OK)
    return rv;
  std::memcpy(out + length, iv.data(), iv.size());
  *out_length = length + 12;
  return CKR_OK;
}

CK_RV fault_DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism,
                        CK_OBJECT_HANDLE key) {
  if (CK_RV injected = inject("C_DecryptInit"); injected != CKR_OK)
    return injected;
  return target().C_DecryptInit(session, mechanism, key);
}

CK_RV fault_Decrypt(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_length,
                    CK_BYTE_PTR out, CK_ULONG_PTR out_length) {
  if (CK_RV injected = inject("C_Decrypt"); injected != CKR_OK)
    return injected;
  return target().C_Decrypt(session, data, data_length, out, out_length);
}

// Several copies may stand in front of one real module: the first initialises it, the others
// find it initialised, and only the first finalises it.
CK_RV fault_Initialize(CK_VOID_PTR args) {
  State& s = state();
  CK_RV rv = s.target->C_Initialize(args);
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
    return CKR_OK;
  s.initialized_target = rv == CKR_OK;
  return rv;
}

// Also forgets the target and the faults: the library stays loaded (the proxy never unloads a
// module), so the next C_GetFunctionList reads the environment afresh, as a new load would.
CK_RV fault_Finalize(CK_VOID_PTR reserved) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  CK_RV rv = s.initialized_target ? s.target->C_Finalize(reserved) : CKR_OK;
  s.target = nullptr;
  s.faults.clear();
  s.iv_mode = IvMode::kPassThrough;
  s.control_mtime = {};
  s.control_size = -1;
  s.appended_ivs.clear();
  s.control_path.clear();
  s.initialized_target = false;
  return rv;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(
    CK_FUNCTION_LIST_PTR_PTR list) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (s.target == nullptr) {
    std::string own;  // this copy's path without ".so"
    Dl_info self{};
    if (::dladdr(reinterpret_cast<void*>(&C_GetFunctionList), &self) != 0 &&
        self.dli_fname != nullptr) {
      own = self.dli_fname;
      own = own.size() > 3 && own.compare(own.size() - 3, 3, ".so") == 0
                ? own.substr(0, own.size() - 3)
                : std::string();
    }
    std::string target;
    if (!own.empty())
      std::getline(std::ifstream(own + ".target"), target);
    if (const char* variable = std::getenv("XKS_FAULT_TARGET"); target.empty() && variable)
      target = variable;
    void* library = target.empty() ? nullptr : ::dlopen(target.c_str(), RTLD_NOW | RTLD_LOCAL);
    auto get = library == nullptr
                   ? nullptr
                   : reinterpret_cast<CK_C_GetFunctionList>(::dlsym(library, "C_GetFunctionList"));
    if (get == nullptr || get(&s.target) != CKR_OK)
      return CKR_GENERAL_ERROR;
    if (const char* control = std::getenv("XKS_FAULT_CONTROL"))
      s.control_path = control;
    else if (!own.empty())
      s.control_path = own + ".ctl";
    s.wrapped = *s.target;
    s.wrapped.C_Initialize = fault_Initialize;
    s.wrapped.C_Finalize = fault_Finalize;
    s.wrapped.C_Login = fault_Login;
    s.wrapped.C_OpenSession = fault_OpenSession;
    s.wrapped.C_GetSessionInfo = fault_GetSessionInfo;
    s.wrapped.C_FindObjectsInit = fault_FindObjectsInit;
    s.wrapped.C_GenerateRandom = fault_GenerateRandom;
    s.wrapped.C_EncryptInit = fault_EncryptInit;
    s.wrapped.C_Encrypt = fault_Encrypt;
    s.wrapped.C_DecryptInit = fault_DecryptInit;
    s.wrapped.C_Decrypt = fault_Decrypt;
    s.wrapped.C_GetFunctionList = C_GetFunctionList;
  }
  *list = &s.wrapped;
  return CKR_OK;
}
