// A fresh NSS softoken database (the token "NSS Certificate DB") in a temporary directory, made
// by certutil with a random password, which is the token's user PIN. The module takes the
// database in its init_reserved parameters, so one process uses one database at a time: load
// the module after making this, and let it go (C_Finalize) before the next. Test helper.
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "softhsm_token.h"
#include "subprocess.h"
#include "xks/hsm/pkcs11_module.h"

namespace xks::test {

inline constexpr const char* kNssModule = "/usr/lib/x86_64-linux-gnu/libsoftokn3.so";

class NssToken {
 public:
  NssToken() : user_pin_("nss-" + random_digits(12)) {
    char pattern[] = "/tmp/xks-nss-XXXXXX";
    if (::mkdtemp(pattern) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    std::filesystem::path password = dir_ / "password";
    std::ofstream(password) << user_pin_ << "\n";
    auto result = run_command("certutil -N -d 'sql:" + dir_.string() + "' -f '" +
                              password.string() + "' 2>&1");
    if (result.exit_code != 0)
      throw std::runtime_error("certutil: " + result.output);
  }
  ~NssToken() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  NssToken(const NssToken&) = delete;
  NssToken& operator=(const NssToken&) = delete;

  hsm::ModuleSpec module() const {
    return {kNssModule, "configdir='sql:" + dir_.string() +
                            "' certPrefix='' keyPrefix='' secmod='secmod.db' flags="};
  }
  std::string label() const { return "NSS Certificate DB"; }
  const std::string& user_pin() const { return user_pin_; }

 private:
  std::string user_pin_;
  std::filesystem::path dir_;
};

}  // namespace xks::test
