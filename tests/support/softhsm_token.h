// A fresh SoftHSMv2 token in a temporary directory with its own configuration and random PINs.
// Sets SOFTHSM2_CONF for this process, so create it before loading the module. Test helper.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

#include "subprocess.h"

namespace xks::test {

inline constexpr const char* kSoftHsmModule = "/usr/lib/softhsm/libsofthsm2.so";

inline std::string random_digits(std::size_t count) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  for (std::size_t i = 0; i < count; ++i)
    out.push_back(static_cast<char>('0' + rng() % 10));
  return out;
}

class SoftHsmToken {
 public:
  explicit SoftHsmToken(std::string label = "xks-test")
      : label_(std::move(label)), user_pin_(random_digits(8)), so_pin_(random_digits(8)) {
    char pattern[] = "/tmp/xks-softhsm-XXXXXX";
    if (::mkdtemp(pattern) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    std::filesystem::create_directory(dir_ / "tokens");
    conf_ = (dir_ / "softhsm2.conf").string();
    std::ofstream(conf_) << "directories.tokendir = " << (dir_ / "tokens").string()
                         << "\nobjectstore.backend = file\nlog.level = ERROR\n";
    ::setenv("SOFTHSM2_CONF", conf_.c_str(), 1);
    add_token(label_);
  }
  ~SoftHsmToken() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  SoftHsmToken(const SoftHsmToken&) = delete;
  SoftHsmToken& operator=(const SoftHsmToken&) = delete;

  // Another token in the same SoftHSM configuration, with the same PINs.
  void add_token(const std::string& label) const {
    auto result =
        run_command("SOFTHSM2_CONF=" + conf_ + " softhsm2-util --init-token --free --label '" +
                    label + "' --so-pin " + so_pin_ + " --pin " + user_pin_ + " 2>&1");
    if (result.exit_code != 0)
      throw std::runtime_error("softhsm2-util: " + result.output);
  }

  const std::string& label() const { return label_; }
  const std::string& user_pin() const { return user_pin_; }
  const std::string& so_pin() const { return so_pin_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::string label_;
  std::string user_pin_;
  std::string so_pin_;
  std::filesystem::path dir_;
  std::string conf_;
};

}  // namespace xks::test
