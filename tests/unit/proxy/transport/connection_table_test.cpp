// The connection table's rules: who is evicted when a limit is reached, who is refused, and
// that every slot comes back.
#include "connection_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace xks::proxy {
namespace {

using Limit = ConnectionTable::Limit;

class ConnectionTableTest : public ::testing::Test {
 protected:
  ConnectionTable& table(ConnectionTable::Limits limits) {
    table_.emplace(limits, [this](Limit limit) { evictions_.push_back(limit); });
    return *table_;
  }

  // Admits a connection from `address` whose eviction is recorded under `name`.
  tl::expected<ConnectionTable::Admission, Limit> admit(const std::string& address,
                                                        const std::string& name) {
    return table_->admit(boost::asio::ip::make_address(address),
                         [this, name] { evicted_.push_back(name); });
  }

  std::optional<ConnectionTable> table_;
  std::vector<Limit> evictions_;
  std::vector<std::string> evicted_;
};

TEST_F(ConnectionTableTest, TheOldestHandshakeGivesWayWhenHandshakesAreFull) {
  table({100, 100, 2, 2});
  auto first = admit("10.0.0.1", "first");
  auto second = admit("10.0.0.2", "second");
  auto third = admit("10.0.0.3", "third");
  ASSERT_TRUE(first && second && third);
  EXPECT_EQ(evicted_, std::vector<std::string>{"first"});
  EXPECT_EQ(evictions_, std::vector<Limit>{Limit::kHandshakes});
  EXPECT_EQ(table_->handshakes(), 2u);
  EXPECT_EQ(table_->open(), 2u);
  // A finished handshake no longer counts against the handshake limit.
  second->handshake_done();
  third->handshake_done();
  auto fourth = admit("10.0.0.4", "fourth");
  auto fifth = admit("10.0.0.5", "fifth");
  ASSERT_TRUE(fourth && fifth);
  EXPECT_EQ(evicted_.size(), 1u);
  EXPECT_EQ(table_->open(), 4u);
}

TEST_F(ConnectionTableTest, TheOldestUnprovenConnectionGivesWayAndProvenOnesStay) {
  table({3, 3, 100, 100});
  auto proven = admit("10.0.0.1", "proven");
  proven->handshake_done();
  proven->prove();
  auto silent = admit("10.0.0.2", "silent");
  silent->handshake_done();
  auto handshaking = admit("10.0.0.3", "handshaking");
  auto newcomer = admit("10.0.0.4", "newcomer");
  ASSERT_TRUE(newcomer);
  EXPECT_EQ(evicted_, std::vector<std::string>{"silent"});
  EXPECT_EQ(evictions_, std::vector<Limit>{Limit::kConnections});
  EXPECT_EQ(table_->open(), 3u);
}

TEST_F(ConnectionTableTest, ANewcomerIsRefusedWhenEveryConnectionIsProven) {
  table({2, 2, 100, 100});
  std::vector<ConnectionTable::Admission> held;
  for (const char* address : {"10.0.0.1", "10.0.0.2"}) {
    auto admission = admit(address, address);
    admission->handshake_done();
    admission->prove();
    held.push_back(std::move(*admission));
  }
  auto refused = admit("10.0.0.3", "refused");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), Limit::kConnections);
  EXPECT_TRUE(evicted_.empty());
  held.pop_back();  // a slot comes back when its connection closes
  EXPECT_TRUE(admit("10.0.0.3", "later"));
}

TEST_F(ConnectionTableTest, OneAddressEvictsOnlyItsOwnUnprovenConnections) {
  table({100, 2, 100, 100});
  auto other = admit("10.0.0.9", "other");
  auto mine_proven = admit("10.0.0.1", "mine-proven");
  mine_proven->prove();
  auto mine_silent = admit("10.0.0.1", "mine-silent");
  auto mine_new = admit("10.0.0.1", "mine-new");
  ASSERT_TRUE(mine_new);
  EXPECT_EQ(evicted_, std::vector<std::string>{"mine-silent"});
  EXPECT_EQ(evictions_, std::vector<Limit>{Limit::kPerClient});
  mine_new->prove();
  auto refused = admit("10.0.0.1", "refused");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), Limit::kPerClient);
  // IPv4 and its IPv4-mapped IPv6 form are the same client.
  auto mapped = admit("::ffff:10.0.0.1", "mapped");
  ASSERT_FALSE(mapped);
  EXPECT_TRUE(admit("10.0.0.2", "another-address"));
}

TEST_F(ConnectionTableTest, OneClientCannotChurnEveryHandshakeSlot) {
  table({100, 100, 4, 2});
  auto other = admit("10.0.0.9", "other");
  auto first = admit("10.0.0.1", "first");
  auto second = admit("10.0.0.1", "second");
  auto third = admit("10.0.0.1", "third");  // over its share, but slots are free: no one goes
  ASSERT_TRUE(other && first && second && third);
  EXPECT_TRUE(evicted_.empty());
  auto fourth = admit("10.0.0.1", "fourth");  // slots full, over its share: its own oldest
  EXPECT_EQ(evicted_, std::vector<std::string>{"first"});
  std::vector<ConnectionTable::Admission> flood;
  for (int i = 0; i < 20; ++i)
    flood.push_back(std::move(*admit("10.0.0.1", "flood-" + std::to_string(i))));
  // However long the flood, the other client's handshake was never closed...
  EXPECT_EQ(std::count(evicted_.begin(), evicted_.end(), "other"), 0);
  // ...and a newcomer from elsewhere takes the oldest slot, one of the flood's.
  auto newcomer = admit("10.0.0.8", "newcomer");
  ASSERT_TRUE(newcomer);
  EXPECT_NE(evicted_.back().find("flood-"), std::string::npos) << evicted_.back();
}

TEST_F(ConnectionTableTest, AConnectionWithARequestInFlightIsNotEvicted) {
  table({2, 2, 100, 100});
  auto busy = admit("10.0.0.1", "busy");
  busy->handshake_done();
  busy->hold_request();
  auto idle = admit("10.0.0.2", "idle");
  idle->handshake_done();
  auto newcomer = admit("10.0.0.3", "newcomer");
  ASSERT_TRUE(newcomer);
  EXPECT_EQ(evicted_, std::vector<std::string>{"idle"});
  // Answered and still unproven: evictable again, as the youngest.
  busy->release_request();
  auto later = admit("10.0.0.4", "later");
  ASSERT_TRUE(later);
  EXPECT_EQ(evicted_, (std::vector<std::string>{"idle", "newcomer"}));
}

TEST_F(ConnectionTableTest, AnIpv6ClientIsItsSlash64) {
  table({100, 2, 100, 100});
  auto first = admit("2001:db8:1:2::1", "first");
  auto second = admit("2001:db8:1:2:ffff::2", "second");
  first->prove();
  second->prove();
  auto same = admit("2001:db8:1:2:abcd::3", "same /64");
  ASSERT_FALSE(same);
  EXPECT_EQ(same.error(), Limit::kPerClient);
  EXPECT_TRUE(admit("2001:db8:1:3::1", "another /64"));
}

TEST_F(ConnectionTableTest, EvictionCallsTheGoodbyeSetLast) {
  table({1, 1, 100, 100});
  auto first = admit("10.0.0.1", "first");
  first->handshake_done();
  first->on_evict([this] { evicted_.push_back("first says goodbye"); });
  auto second = admit("10.0.0.2", "second");
  ASSERT_TRUE(second);
  EXPECT_EQ(evicted_, std::vector<std::string>{"first says goodbye"});
  // Once evicted, a connection's goodbye can no longer be replaced or called again.
  first->on_evict([this] { evicted_.push_back("too late"); });
  auto third = admit("10.0.0.3", "third");
  EXPECT_EQ(evicted_, (std::vector<std::string>{"first says goodbye", "second"}));
}

TEST_F(ConnectionTableTest, SlotsComeBackFromClosedAndEvictedConnections) {
  table({2, 2, 2, 2});
  {
    auto first = admit("10.0.0.1", "first");
    auto second = admit("10.0.0.1", "second");
    auto third = admit("10.0.0.1", "third");  // evicts first
    EXPECT_EQ(table_->open(), 2u);
    // Moving an admission keeps one slot.
    ConnectionTable::Admission moved = std::move(*third);
    EXPECT_EQ(table_->open(), 2u);
  }
  EXPECT_EQ(table_->open(), 0u);
  EXPECT_EQ(table_->handshakes(), 0u);
  EXPECT_TRUE(admit("10.0.0.1", "again"));
}

}  // namespace
}  // namespace xks::proxy
