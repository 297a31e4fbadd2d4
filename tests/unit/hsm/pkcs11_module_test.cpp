// Loading the real SoftHSM module and choosing tokens by label, serial and slot id.
#include "xks/hsm/pkcs11_module.h"

#include <gtest/gtest.h>

#include "softhsm_token.h"

namespace xks::hsm {
namespace {

using test::kSoftHsmModule;
using test::SoftHsmToken;

TEST(Pkcs11Module, FindsATokenByLabelSerialOrSlotId) {
  SoftHsmToken token("xks-first");
  token.add_token("xks-second");
  auto module = Pkcs11Module::load({kSoftHsmModule});
  ASSERT_TRUE(module.has_value()) << module.error().message;

  auto by_label = (*module)->find_token({TokenSelector::By::kLabel, "xks-second"});
  ASSERT_TRUE(by_label.has_value()) << by_label.error().message;
  EXPECT_EQ(by_label->label, "xks-second");
  EXPECT_EQ(by_label->manufacturer, "SoftHSM project");
  EXPECT_FALSE(by_label->serial.empty());

  auto by_serial = (*module)->find_token({TokenSelector::By::kSerial, by_label->serial});
  ASSERT_TRUE(by_serial.has_value()) << by_serial.error().message;
  EXPECT_EQ(by_serial->slot_id, by_label->slot_id);

  auto by_slot =
      (*module)->find_token({TokenSelector::By::kSlotId, std::to_string(by_label->slot_id)});
  ASSERT_TRUE(by_slot.has_value()) << by_slot.error().message;
  EXPECT_EQ(by_slot->label, "xks-second");

  auto first = (*module)->find_token({TokenSelector::By::kLabel, "xks-first"});
  ASSERT_TRUE(first.has_value());
  EXPECT_NE(first->slot_id, by_label->slot_id);
}

TEST(Pkcs11Module, IsLoadedAndInitialisedOncePerProcessHoweverItsPathIsSpelt) {
  SoftHsmToken token("xks-once");
  auto first = Pkcs11Module::load({kSoftHsmModule});
  ASSERT_TRUE(first.has_value()) << first.error().message;
  // Another spelling of the same library: a second C_Initialize would be refused.
  auto second = Pkcs11Module::load({"/usr/lib/softhsm/../softhsm/libsofthsm2.so"});
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(first->get(), second->get());
  EXPECT_TRUE((*second)->find_token({TokenSelector::By::kLabel, "xks-once"}).has_value());
}

// PKCS#11 initialises a module once per process: a second load that asks for other
// initialisation parameters (C_Initialize pReserved) is refused, naming why.
TEST(Pkcs11Module, ALoadedModuleIsNotInitialisedAgainWithOtherParameters) {
  SoftHsmToken token("xks-params");
  auto first = Pkcs11Module::load({kSoftHsmModule});
  ASSERT_TRUE(first.has_value()) << first.error().message;
  auto other = Pkcs11Module::load({kSoftHsmModule, "configdir='sql:/elsewhere'"});
  ASSERT_FALSE(other.has_value());
  EXPECT_NE(other.error().message.find("already initialised with other init_reserved"),
            std::string::npos)
      << other.error().message;
  auto same = Pkcs11Module::load({kSoftHsmModule, ""});
  ASSERT_TRUE(same.has_value()) << same.error().message;
  EXPECT_EQ(first->get(), same->get());
}

TEST(Pkcs11Module, RefusesAnUnknownOrAmbiguousToken) {
  SoftHsmToken token("xks-twin");
  token.add_token("xks-twin");
  auto module = Pkcs11Module::load({kSoftHsmModule});
  ASSERT_TRUE(module.has_value()) << module.error().message;

  auto twins = (*module)->find_token({TokenSelector::By::kLabel, "xks-twin"});
  ASSERT_FALSE(twins.has_value());
  EXPECT_NE(twins.error().message.find("several tokens"), std::string::npos)
      << twins.error().message;

  auto missing = (*module)->find_token({TokenSelector::By::kLabel, "xks-none"});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, HsmErrorKind::kUnavailable);
  EXPECT_NE(missing.error().message.find("no token with label 'xks-none'"), std::string::npos);

  EXPECT_FALSE((*module)->find_token({TokenSelector::By::kSlotId, "12x"}).has_value());
  EXPECT_FALSE((*module)->find_token({TokenSelector::By::kSlotId, "999999"}).has_value());
}

TEST(Pkcs11Module, ReportsAMissingLibraryOrANonModule) {
  auto missing = Pkcs11Module::load({"/nonexistent/libpkcs11.so"});
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().kind, HsmErrorKind::kUnavailable);
  EXPECT_NE(missing.error().message.find("cannot load"), std::string::npos);

  auto not_pkcs11 = Pkcs11Module::load({"libz.so.1"});
  ASSERT_FALSE(not_pkcs11.has_value());
  EXPECT_NE(not_pkcs11.error().message.find("not a PKCS#11 module"), std::string::npos)
      << not_pkcs11.error().message;
}

}  // namespace
}  // namespace xks::hsm
