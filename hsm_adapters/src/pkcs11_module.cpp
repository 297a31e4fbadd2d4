// Loading a PKCS#11 module and choosing its token.
#include "xks/hsm/pkcs11_module.h"

#include <dlfcn.h>

#include <charconv>
#include <map>
#include <mutex>
#include <vector>

namespace xks::hsm {

namespace {

// PKCS#11 text fields are fixed-size and padded with spaces.
template <std::size_t N>
std::string padded(const unsigned char (&field)[N]) {
  std::string text(reinterpret_cast<const char*>(field), N);
  text.erase(text.find_last_not_of(' ') + 1);
  return text;
}

}  // namespace

HsmResult<std::shared_ptr<Pkcs11Module>> Pkcs11Module::load(const ModuleSpec& spec) {
  const std::string& path = spec.path;
  // A module is initialised once per process (PKCS#11 §5.4): backends on the same module (a
  // fleet of tokens behind one library) share one loaded instance, however its path is spelt
  // (the loader's handle names the library).
  static std::mutex mutex;
  static std::map<void*, std::weak_ptr<Pkcs11Module>> loaded;
  std::lock_guard lock(mutex);
  // Never unloaded: a vendor library may leave threads or exit handlers behind after
  // C_Finalize, which would crash the process once its code is gone.
  void* library = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (library == nullptr) {
    return tl::unexpected(HsmError{HsmErrorKind::kUnavailable, CKR_OK,
                                   "cannot load PKCS#11 module " + path + ": " + ::dlerror()});
  }
  if (auto existing = loaded[library].lock()) {
    ::dlclose(library);  // the loader counts each dlopen; the instance holds its own
    if (existing->init_reserved_ != spec.init_reserved) {
      return tl::unexpected(
          HsmError{HsmErrorKind::kUnavailable, CKR_OK,
                   "PKCS#11 module " + path +
                       " is already initialised with other init_reserved parameters (a module is "
                       "initialised once per process: give every HSM on it the same)"});
    }
    return existing;
  }
  auto get_function_list =
      reinterpret_cast<CK_C_GetFunctionList>(::dlsym(library, "C_GetFunctionList"));
  CK_FUNCTION_LIST* api = nullptr;
  CK_RV rv = get_function_list == nullptr ? CKR_FUNCTION_NOT_SUPPORTED : get_function_list(&api);
  if (rv != CKR_OK || api == nullptr) {
    ::dlclose(library);
    return tl::unexpected(HsmError{HsmErrorKind::kUnavailable, rv,
                                   path + " is not a PKCS#11 module (C_GetFunctionList)"});
  }
  // The module may create threads and must use the OS's locking: the pool calls it from
  // several threads at once.
  std::shared_ptr<Pkcs11Module> module(new Pkcs11Module(spec, library, api));
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  // Read as a C string; PKCS#11 does not say for how long, so it lives as long as the module.
  if (!module->init_reserved_.empty())
    args.pReserved = module->init_reserved_.data();
  rv = api->C_Initialize(&args);
  if (rv != CKR_OK) {
    HsmError error = HsmError::from_rv("C_Initialize", rv);
    error.kind = HsmErrorKind::kUnavailable;
    error.message = path + ": " + error.message;
    return tl::unexpected(std::move(error));  // the module goes, unloading the library
  }
  module->initialized_ = true;
  loaded[library] = module;
  return module;
}

Pkcs11Module::Pkcs11Module(ModuleSpec spec, void* library, CK_FUNCTION_LIST* api)
    : path_(std::move(spec.path)),
      init_reserved_(std::move(spec.init_reserved)),
      library_(library),
      api_(api) {}

Pkcs11Module::~Pkcs11Module() {
  if (initialized_)
    api_->C_Finalize(nullptr);
  ::dlclose(library_);
}

HsmResult<TokenInfo> Pkcs11Module::token_info(CK_SLOT_ID slot_id) const {
  CK_TOKEN_INFO info{};
  if (CK_RV rv = api_->C_GetTokenInfo(slot_id, &info); rv != CKR_OK) {
    return tl::unexpected(HsmError::from_rv("C_GetTokenInfo", rv));
  }
  return TokenInfo{slot_id,
                   padded(info.label),
                   padded(info.manufacturerID),
                   padded(info.model),
                   padded(info.serialNumber),
                   info.hardwareVersion,
                   info.firmwareVersion};
}

HsmResult<TokenInfo> Pkcs11Module::find_token(const TokenSelector& selector) const {
  CK_ULONG count = 0;
  if (CK_RV rv = api_->C_GetSlotList(CK_TRUE, nullptr, &count); rv != CKR_OK) {
    return tl::unexpected(HsmError::from_rv("C_GetSlotList", rv));
  }
  std::vector<CK_SLOT_ID> slots(count);
  if (CK_RV rv = api_->C_GetSlotList(CK_TRUE, slots.data(), &count); rv != CKR_OK) {
    return tl::unexpected(HsmError::from_rv("C_GetSlotList", rv));
  }
  slots.resize(count);

  const char* what = selector.by == TokenSelector::By::kLabel    ? "label"
                     : selector.by == TokenSelector::By::kSerial ? "serial"
                                                                 : "slot id";
  std::vector<TokenInfo> matches;
  for (CK_SLOT_ID slot : slots) {
    auto info = token_info(slot);
    if (!info)
      return tl::unexpected(info.error());
    bool match = false;
    switch (selector.by) {
      case TokenSelector::By::kLabel:
        match = info->label == selector.value;
        break;
      case TokenSelector::By::kSerial:
        match = info->serial == selector.value;
        break;
      case TokenSelector::By::kSlotId: {
        CK_SLOT_ID wanted = 0;
        const char* end = selector.value.data() + selector.value.size();
        auto parsed = std::from_chars(selector.value.data(), end, wanted);
        match = parsed.ec == std::errc{} && parsed.ptr == end && wanted == slot;
        break;
      }
    }
    if (match)
      matches.push_back(std::move(*info));
  }
  if (matches.size() == 1)
    return std::move(matches.front());
  std::string reason = matches.empty() ? "no token with " : "several tokens with ";
  reason.append(what).append(" '").append(selector.value).append("' in ").append(path_);
  if (!matches.empty())
    reason.append(": choose by serial or slot id");
  return tl::unexpected(HsmError{HsmErrorKind::kUnavailable, CKR_OK, std::move(reason)});
}

}  // namespace xks::hsm
