// The connection table's bookkeeping.
#include "connection_table.h"

#include <utility>
#include <vector>

namespace xks::proxy {

namespace {

std::array<std::uint8_t, 16> key_of(const boost::asio::ip::address& address) {
  if (address.is_v4())
    return boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4()).to_bytes();
  std::array<std::uint8_t, 16> bytes = address.to_v6().to_bytes();
  if (!address.to_v6().is_v4_mapped())
    std::fill(bytes.begin() + 8, bytes.end(), std::uint8_t{0});  // its /64
  return bytes;
}

}  // namespace

ConnectionTable::ConnectionTable(Limits limits, OnEvicted on_evicted)
    : limits_(limits), on_evicted_(std::move(on_evicted)) {}

tl::expected<ConnectionTable::Admission, ConnectionTable::Limit> ConnectionTable::admit(
    const boost::asio::ip::address& client, Evict evict) {
  auto entry = std::make_shared<Entry>();
  entry->client = key_of(client);
  entry->evict = std::move(evict);
  std::vector<std::pair<Limit, Evict>> evicted;
  std::optional<Limit> refused;
  {
    std::lock_guard lock(mutex_);
    auto own = clients_.find(entry->client);
    if (own != clients_.end() && own->second.open >= limits_.max_per_client) {
      if (own->second.unproven.empty())
        refused = Limit::kPerClient;
      else
        evicted.emplace_back(Limit::kPerClient, evict_front(own->second.unproven));
    }
    if (!refused && open_ >= limits_.max_connections) {
      if (unproven_.empty())
        refused = Limit::kConnections;
      else
        evicted.emplace_back(Limit::kConnections, evict_front(unproven_));
    }
    if (!refused && handshakes_.size() >= limits_.max_handshakes) {
      // Scarce handshake slots: a client over its share gives up its own oldest; otherwise
      // the client holding the most gives up its oldest. One address cannot churn everyone
      // else's handshakes. (A scan of the clients, only while the slots are all taken.)
      own = clients_.find(entry->client);  // evictions above may have erased it
      Client* giver = nullptr;
      if (own != clients_.end() &&
          own->second.handshakes.size() >= limits_.max_handshakes_per_client) {
        giver = &own->second;
      } else {
        for (auto& [address, holder] : clients_) {
          if (giver == nullptr || holder.handshakes.size() > giver->handshakes.size())
            giver = &holder;
        }
      }
      evicted.emplace_back(Limit::kHandshakes, evict_front(giver->handshakes));
    }
    if (!refused) {
      Client& mine = clients_[entry->client];
      ++mine.open;
      ++open_;
      entry->in_all = all_.insert(all_.end(), entry);
      entry->in_handshakes = handshakes_.insert(handshakes_.end(), entry);
      entry->in_client_handshakes = mine.handshakes.insert(mine.handshakes.end(), entry);
      entry->in_unproven = unproven_.insert(unproven_.end(), entry);
      entry->in_client_unproven = mine.unproven.insert(mine.unproven.end(), entry);
    }
  }
  for (auto& [limit, close] : evicted) {
    if (on_evicted_)
      on_evicted_(limit);
    close();
  }
  if (refused)
    return tl::unexpected(*refused);
  return Admission(this, std::move(entry));
}

ConnectionTable::Evict ConnectionTable::evict_front(Queue& queue) {
  std::shared_ptr<Entry> victim = queue.front();
  forget(*victim);
  return std::move(victim->evict);
}

void ConnectionTable::leave_handshakes(Entry& entry, Client& client) {
  if (entry.in_handshakes)
    handshakes_.erase(*std::exchange(entry.in_handshakes, std::nullopt));
  if (entry.in_client_handshakes)
    client.handshakes.erase(*std::exchange(entry.in_client_handshakes, std::nullopt));
}

void ConnectionTable::leave_unproven(Entry& entry, Client& client) {
  if (entry.in_unproven)
    unproven_.erase(*std::exchange(entry.in_unproven, std::nullopt));
  if (entry.in_client_unproven)
    client.unproven.erase(*std::exchange(entry.in_client_unproven, std::nullopt));
}

void ConnectionTable::forget(Entry& entry) {
  if (entry.released)
    return;
  entry.released = true;
  auto client = clients_.find(entry.client);
  leave_handshakes(entry, client->second);
  leave_unproven(entry, client->second);
  if (entry.in_all)
    all_.erase(*std::exchange(entry.in_all, std::nullopt));
  --open_;
  if (--client->second.open == 0)
    clients_.erase(client);
}

std::size_t ConnectionTable::open() const {
  std::lock_guard lock(mutex_);
  return open_;
}

std::size_t ConnectionTable::handshakes() const {
  std::lock_guard lock(mutex_);
  return handshakes_.size();
}

void ConnectionTable::drain_all() {
  std::vector<std::function<void()>> drains;
  {
    std::lock_guard lock(mutex_);
    for (const std::shared_ptr<Entry>& entry : all_) {
      if (entry->drain)
        drains.push_back(entry->drain);
    }
  }
  for (auto& drain : drains)
    drain();
}

void ConnectionTable::Admission::on_drain(std::function<void()> drain) {
  if (table_ == nullptr || entry_ == nullptr)
    return;
  std::lock_guard lock(table_->mutex_);
  entry_->drain = std::move(drain);
}

void ConnectionTable::Admission::on_evict(Evict evict) {
  if (table_ == nullptr || entry_ == nullptr)
    return;
  std::lock_guard lock(table_->mutex_);
  if (!entry_->released)
    entry_->evict = std::move(evict);
}

ConnectionTable::Admission& ConnectionTable::Admission::operator=(Admission&& other) noexcept {
  if (this != &other) {
    release();
    table_ = std::exchange(other.table_, nullptr);
    entry_ = std::move(other.entry_);
  }
  return *this;
}

ConnectionTable::Admission::~Admission() {
  release();
}

void ConnectionTable::Admission::release() {
  if (table_ == nullptr || entry_ == nullptr)
    return;
  std::lock_guard lock(table_->mutex_);
  table_->forget(*entry_);
  entry_.reset();
}

void ConnectionTable::Admission::handshake_done() {
  if (table_ == nullptr || entry_ == nullptr)
    return;
  std::lock_guard lock(table_->mutex_);
  if (!entry_->released)
    table_->leave_handshakes(*entry_, table_->clients_.at(entry_->client));
}

void ConnectionTable::Admission::prove() {
  if (table_ == nullptr || entry_ == nullptr)
    return;
  std::lock_guard lock(table_->mutex_);
  Entry& entry = *entry_;
  if (entry.released || entry.proven)
    return;
  entry.proven = true;
  table_->leave_unproven(entry, table_->clients_.at(entry.client));
}

void ConnectionTable::Admission::hold_request() {
  if (table_ == nullptr || entry_ == nullptr)
    return;
  std::lock_guard lock(table_->mutex_);
  Entry& entry = *entry_;
  if (entry.released || entry.requests++ > 0)
    return;
  table_->leave_unproven(entry, table_->clients_.at(entry.client));
}

void ConnectionTable::Admission::release_request() {
  if (table_ == nullptr || entry_ == nullptr)
    return;
  std::lock_guard lock(table_->mutex_);
  Entry& entry = *entry_;
  if (entry.released || --entry.requests > 0 || entry.proven)
    return;
  // Unproven and idle again: evictable, as the youngest.
  Client& client = table_->clients_.at(entry.client);
  entry.in_unproven = table_->unproven_.insert(table_->unproven_.end(), entry_);
  entry.in_client_unproven = client.unproven.insert(client.unproven.end(), entry_);
}

}  // namespace xks::proxy
