// hsm::Fleet on two real SoftHSM tokens: which member a call goes to (usable, holding the key,
// least busy, not yet tried), the key inventory taken at start, and what it refuses.
#include "xks/hsm/fleet.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "hsm_fixture.h"

namespace xks::hsm {
namespace {

using namespace std::chrono_literals;

class FleetTest : public test::HsmFixture {
 protected:
  FleetTest() { token_.add_token("second"); }  // before the module loads and lists tokens

  void SetUp() override {
    HsmFixture::SetUp();
    auto second = module_->find_token({TokenSelector::By::kLabel, "second"});
    ASSERT_TRUE(second.has_value()) << second.error().message;
    second_slot_ = second->slot_id;
    for (CK_SLOT_ID slot : {slot_, second_slot_}) {
      for (const char* label : {"health", "shared"}) {
        ASSERT_TRUE(create_aes_key(*module_, slot, token_.user_pin(), label, {}).has_value());
      }
    }
    ASSERT_TRUE(create_aes_key(*module_, slot_, token_.user_pin(), "first-only", {}).has_value());
    pin_file_ = (token_.dir() / "pin").string();
    std::ofstream(pin_file_) << token_.user_pin() << "\n";
  }

  std::unique_ptr<Backend> start(const std::string& label) {
    auto backend = Backend::start(
        {.module = {test::kSoftHsmModule},
         .token = {TokenSelector::By::kLabel, label},
         .pin = {PinSource::From::kFile, pin_file_, {}},
         .profile = *vendor_profile("softhsm"),
         .health_key = "health",
         .sessions = 1,
         .workers = 1,
         .circuit_breaker = {.consecutive_failures = 1, .open_for = std::chrono::hours(1)},
         .on_event = {},
         .on_key_change = {},
         .on_keys_read = {}});
    EXPECT_TRUE(backend.has_value()) << backend.error().message;
    return backend ? std::move(*backend) : nullptr;
  }

  std::unique_ptr<Fleet> assemble() {
    std::vector<std::pair<std::string, std::unique_ptr<Backend>>> members;
    members.emplace_back("a", start(token_.label()));
    members.emplace_back("b", start("second"));
    auto fleet = Fleet::assemble(std::move(members));
    EXPECT_TRUE(fleet.has_value()) << fleet.error().message;
    return fleet ? std::move(*fleet) : nullptr;
  }

  CK_SLOT_ID second_slot_ = 0;
  std::string pin_file_;
};

TEST_F(FleetTest, ChoosesTheLeastBusyUsableMemberThatHoldsTheKey) {
  auto fleet = assemble();
  ASSERT_TRUE(fleet);
  // Equally idle members are taken in turn.
  std::set<std::size_t> idle_picks{*fleet->choose("shared"), *fleet->choose("shared")};
  EXPECT_EQ(idle_picks.size(), 2u);
  fleet->member(0).in_flight = 3;
  EXPECT_EQ(fleet->choose("shared"), 1u);  // least busy
  fleet->member(1).in_flight = 5;
  EXPECT_EQ(fleet->choose("shared"), 0u);
  EXPECT_EQ(fleet->choose("first-only"), 0u);               // only the first holds it, however busy
  EXPECT_EQ(fleet->choose("shared", Fleet::Tried{1}), 1u);  // the first was tried
  EXPECT_FALSE(fleet->choose("first-only", Fleet::Tried{1}).has_value());
  // A key nobody held at start may be new: any usable member may answer for it.
  EXPECT_TRUE(fleet->choose("created-later").has_value());
  fleet->member(0).in_flight = 0;
  fleet->member(1).in_flight = 0;
}

TEST_F(FleetTest, AMemberWhoseCircuitIsOpenIsNotChosen) {
  auto fleet = assemble();
  ASSERT_TRUE(fleet);
  fleet->member(0).backend->circuit().record_failure();  // opens (one failure, by the options)
  EXPECT_EQ(fleet->choose("shared"), 1u);
  EXPECT_FALSE(fleet->choose("first-only").has_value());
  EXPECT_TRUE(fleet->any_usable());
  fleet->member(1).backend->circuit().record_failure();
  EXPECT_FALSE(fleet->choose("shared").has_value());
  EXPECT_FALSE(fleet->any_usable());
}

TEST_F(FleetTest, ReportsTheKeysSomeMembersLack) {
  auto fleet = assemble();
  ASSERT_TRUE(fleet);
  auto gaps = fleet->key_gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].key_id, "first-only");
  EXPECT_EQ(gaps[0].missing_from, std::vector<std::string>{"b"});
}

TEST_F(FleetTest, RefusesTwoMembersOfOneName) {
  std::vector<std::pair<std::string, std::unique_ptr<Backend>>> members;
  members.emplace_back("same", start(token_.label()));
  members.emplace_back("same", start("second"));
  auto fleet = Fleet::assemble(std::move(members));
  ASSERT_FALSE(fleet.has_value());
  EXPECT_EQ(fleet.error().message, "two HSMs are named 'same'");
}

}  // namespace
}  // namespace xks::hsm
