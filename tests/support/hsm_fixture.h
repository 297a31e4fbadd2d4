// A SoftHSM token with the module loaded and a session pool open: the base of the HSM tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "softhsm_token.h"
#include "xks/hsm/key_admin.h"
#include "xks/hsm/pkcs11_module.h"
#include "xks/hsm/session_pool.h"

namespace xks::test {

class HsmFixture : public testing::Test {
 protected:
  // The PKCS#11 module the test talks to; the token underneath is always SoftHSM.
  virtual std::string module_path() const { return kSoftHsmModule; }

  void SetUp() override {
    auto loaded = hsm::Pkcs11Module::load({module_path()});
    ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
    module_ = *loaded;
    auto token = module_->find_token({hsm::TokenSelector::By::kLabel, token_.label()});
    ASSERT_TRUE(token.has_value()) << token.error().message;
    slot_ = token->slot_id;
  }

  void TearDown() override {
    pool_.reset();
    module_.reset();
  }

  void open_pool(hsm::SessionPoolOptions options = {}) {
    auto pool = hsm::SessionPool::open(module_, slot_, token_.user_pin(), options);
    ASSERT_TRUE(pool.has_value()) << pool.error().message;
    pool_ = std::move(*pool);
  }

  void create_key(const std::string& label, hsm::KeyUsageRequest usage = {}) {
    auto created = hsm::create_aes_key(*module_, slot_, token_.user_pin(), label, usage);
    ASSERT_TRUE(created.has_value()) << created.error().message;
  }

  static hsm::SessionPool::Clock::time_point in(std::chrono::milliseconds delay) {
    return hsm::SessionPool::Clock::now() + delay;
  }

  SoftHsmToken token_;
  std::shared_ptr<hsm::Pkcs11Module> module_;
  CK_SLOT_ID slot_ = 0;
  std::unique_ptr<hsm::SessionPool> pool_;
};

}  // namespace xks::test
